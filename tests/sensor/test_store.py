"""The sensor's late sightings (pure): which stored rows are recorded as late, and by which quarter hour."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest

from sensor.store import LATE_AFTER_S, SLOT_S, late_slots

T = datetime(2026, 1, 5, 4, 0, tzinfo=UTC).timestamp()  # a quarter hour's start


@pytest.mark.parametrize(("rows", "now", "expected"), [
    ([], T, []),
    # heard now, or up to LATE_AFTER_S ago: the window rolls them up
    ([("s1", T), ("s1", T - LATE_AFTER_S)], T, []),
    # heard earlier: their quarter hour (start), once per store
    ([("s1", T - LATE_AFTER_S - 0.001)], T, [("s1", int(T) - SLOT_S)]),
    ([("s1", T - 3 * 86400 + 1), ("s1", T - 3 * 86400 + 899), ("s1", T - 3 * 86400 + 900)], T,
     [("s1", int(T) - 3 * 86400), ("s1", int(T) - 3 * 86400 + SLOT_S)]),
    ([("s2", T - 86400), ("s1", T - 86400), ("s2", T - 86400 + 5), ("s1", T)], T,
     [("s1", int(T) - 86400), ("s2", int(T) - 86400)]),
])
def test_late_slots(rows: list[tuple[str, float]], now: float, expected: list[tuple[str, int]]) -> None:
    assert late_slots(rows, now) == expected


def test_every_zone_offset_is_whole_quarter_hours_so_a_slot_lies_in_one_local_day() -> None:
    # the dispatcher maps a slot to the local day of its start (analytics.late.store_days): that is the day of its
    # every instant when local midnight falls on a quarter hour, i.e. when every offset is a whole number of them
    odd = set()
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for name in available_timezones():
        zone = ZoneInfo(name)
        for week in range(0, 52 * 30, 2):
            offset = (start + timedelta(weeks=week)).astimezone(zone).utcoffset()
            assert offset is not None
            if offset.total_seconds() % SLOT_S:
                odd.add(name)
    assert not odd
