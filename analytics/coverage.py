"""The AP's station list heard: in which hours of a day, and over how much of the opening hours (pure).

The AP's poller records each successful poll of hostapd's station list by 5-minute slot (``sensor.store.
station_polls``), also when nobody is connected; a failed poll, or a poller that is not running, records nothing.
So the connected figures (exact, basis ``connected_stations``) are exact for the slots polled only:

- an hour of a day is *heard* when a slot starting in it was polled (:func:`heard_hours`); ``hourly_connected`` is
  ``None`` in an hour not heard of a day that has polls, where 0 says the list was read and nobody was on it;
- the ``connected`` block's ``coverage`` is the share of the range's opening-hour slots (``open_hour`` to
  ``close_hour`` of each store-local day, up to a cut: the slots begun by then) that were polled
  (:func:`opening_hours`, :func:`coverage_counts`). Below 1 the figures are a lower bound: the stations connected
  only in slots not polled are missing.

Slots are epoch seconds of their start, multiples of :data:`sensor.stations.POLL_SLOT_S`; every time zone's offset
is a whole number of quarter hours, so an opening hour starts on a slot.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from analytics.visits import Rules
from sensor.stations import POLL_SLOT_S

I64 = npt.NDArray[np.int64]


def slots(values: Iterable[int]) -> I64:
    """The slot starts ``values`` sorted, each once (several sensors may poll one store's slot)."""
    return np.unique(np.fromiter(values, dtype=np.int64))


def heard_hours(polled: I64, day_start_s: int, day_end_s: int) -> list[bool]:
    """For each of the day's 24 hours (real hours from the store-local midnight ``day_start_s``; a 25th hour of a
    daylight-saving day folds into the last, as in ``analytics.metrics.connected_hours``): whether a slot starting
    in it, before ``day_end_s``, was polled (``polled``: sorted slot starts, :func:`slots`)."""
    day = polled[(polled >= day_start_s) & (polled < day_end_s)]
    hours = np.clip((day - day_start_s) // 3600, 0, 23)
    return [bool(n) for n in np.bincount(hours, minlength=24)[:24]]


def opening_hours(day: date, tz: str, rules: Rules) -> tuple[int, int]:
    """Epoch seconds of the store-local day's opening (``rules.open_hour``) and closing (``close_hour``; 24: the
    next midnight)."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, rules.open_hour, tzinfo=zone)
    last = day + timedelta(days=rules.close_hour // 24)
    close = datetime(last.year, last.month, last.day, rules.close_hour % 24, tzinfo=zone)
    return int(start.timestamp()), int(close.timestamp())


def coverage_counts(polled: I64, spans: Sequence[tuple[int, int]], cut: float) -> tuple[int, int]:
    """(slots polled, slots) of the 5-minute slots in ``spans`` (epoch seconds [start, end), :func:`opening_hours`)
    that began before ``cut`` (the newest poll or sighting: its slot counts; the slots to come count either way)."""
    heard = total = 0
    for lo, hi in spans:
        first = -(-lo // POLL_SLOT_S) * POLL_SLOT_S
        end = min(hi, math.ceil(cut / POLL_SLOT_S) * POLL_SLOT_S)  # the first slot that begins at or after the cut
        if end <= first:
            continue
        n = (end - first) // POLL_SLOT_S
        total += n
        heard += int(np.count_nonzero((polled >= first) & (polled < end)))
    return heard, total


def coverage(counts: Iterable[tuple[int, int]]) -> float | None:
    """The share of slots polled over ``counts`` ((polled, slots) of each store); None without a slot."""
    heard = total = 0
    for h, t in counts:
        heard, total = heard + h, total + t
    return heard / total if total else None
