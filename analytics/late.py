"""The late days the dispatcher rolls up beyond its window (pure).

The dispatcher rolls up today and yesterday (``analytics.pipeline.days_to_roll``). Sightings stored later than that
(a sensor's spool delivered after an outage) are recorded by the sensor by store and UTC quarter hour
(``sensor.store.late_sightings``: the sensor knows no time zone), and a late store-day's roll-up records its mall-day
(``analytics.store.late_mall_days``). Here those records become store-local days, the days the window rolls up
anyway are left to it, and the days whose sightings the retention purge deletes are dropped: rolling up a day with
part of its sightings gone would replace its stored figures with smaller ones.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date

from analytics.days import day_start, local_day

#: a roll-up dispatched this long ago and still recorded (its task failed for good, or was lost) is sent again
LEASE_S = 3600


@dataclass(frozen=True)
class Plan:
    """What to do with the late (store or mall, day)s: ``roll`` beyond the window, ``drop`` (past retention)."""

    roll: tuple[tuple[str, date], ...]
    drop: tuple[tuple[str, date], ...]


def store_days(slots: Iterable[tuple[str, int]], zones: dict[str, str]) -> list[tuple[str, date, str]]:
    """(store, store-local day, time zone) of each late quarter hour ``(store, slot)`` (``zones``: store -> zone)."""
    return [(s, local_day(slot, zones[s]), zones[s]) for s, slot in slots]


def plan(late: Iterable[tuple[str, date, str]], window: Collection[tuple[str, date]], cut: float) -> Plan:
    """The late ``(key, day, zone)``s (a key is a store or a mall) rolled beyond ``window`` (the dispatcher's days
    of today and yesterday), and those dropped: the day began before ``cut`` (the raw retention's: its first
    sightings are purged). A mall-day any of whose stores' days began before the cut is dropped."""
    days: dict[tuple[str, date], bool] = {}
    for key, day, tz in late:
        days[(key, day)] = days.get((key, day), False) or day_start(day, tz) < cut
    return Plan(roll=tuple(sorted(k for k, old in days.items() if not old and k not in window)),
                drop=tuple(sorted(k for k, old in days.items() if old)))
