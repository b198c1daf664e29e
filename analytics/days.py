"""Store-local days (pure): which day an instant falls on in a store's time zone, and where a day begins and ends.

One home for what the roll-ups, the reports, the late days and the dashboards all need: a day of a store is its
local calendar day, 23 or 25 hours long where the zone shifts its clocks.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def local_day(ts: float, tz: str) -> date:
    """The store-local day of the instant ``ts`` (epoch seconds) in the zone ``tz``."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).date()


def day_start(day: date, tz: str) -> float:
    """Epoch seconds of the local day's first instant."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()


def day_bounds(day: date, tz: str) -> tuple[int, int]:
    """Epoch milliseconds of the store-local day's first instant and of the next day's."""
    nxt = day + timedelta(days=1)
    return round(day_start(day, tz) * 1000), round(day_start(nxt, tz) * 1000)
