"""analytics.coverage (pure): the hours of a day in which the AP's station list was read, a store's opening hours,
and the share of their 5-minute slots that were read."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from analytics.coverage import coverage, coverage_counts, heard_hours, opening_hours, slots
from analytics.visits import Rules
from tests.analytics.builders import DAY, DAY_START

H = 3600
START = int(DAY_START)  # the test day's local midnight (Asia/Shanghai), a multiple of 300


def read(*spans: tuple[float, float]) -> np.ndarray:
    """The slots of polls every 10 s over ``spans`` (hours after midnight, [start, end))."""
    return slots(int((START + t) // 300 * 300) for a, b in spans for t in np.arange(a * H, b * H, 10.0))


def test_slots_sorted_once_whoever_polled() -> None:
    assert slots([600, 300, 600, 0]).tolist() == [0, 300, 600]
    assert slots([]).tolist() == []


@pytest.mark.parametrize(("spans", "hours"), [
    ([], []),
    ([(10, 22)], list(range(10, 22))),
    ([(10, 12), (14, 22)], [10, 11, *range(14, 22)]),  # the poller down from 12:00 to 14:00
    ([(9.99, 10.01)], [9, 10]),  # one slot in each
])
def test_an_hour_is_heard_when_a_slot_starting_in_it_was_read(spans: list[tuple[float, float]],
                                                              hours: list[int]) -> None:
    assert heard_hours(read(*spans), START, START + 24 * H) == [h in hours for h in range(24)]


def test_the_next_days_slots_are_not_this_days_hours() -> None:
    got = read((23, 26))  # 23:00 to 02:00 the next day
    assert heard_hours(got, START, START + 24 * H) == [h == 23 for h in range(24)]
    assert heard_hours(got, START + 24 * H, START + 48 * H) == [h in (0, 1) for h in range(24)]


def test_a_25_hour_day_folds_its_last_hour_into_the_24th() -> None:
    assert heard_hours(slots([START + 24 * H + 600]), START, START + 25 * H) == [h == 23 for h in range(24)]


@pytest.mark.parametrize(("day", "tz", "rules", "hours"), [
    (DAY, "Asia/Shanghai", Rules(), (10, 22)),
    (DAY, "Asia/Shanghai", Rules(open_hour=0, close_hour=24), (0, 24)),
    (DAY, "Asia/Kathmandu", Rules(open_hour=9, close_hour=21), (9, 21)),
])
def test_opening_hours_in_the_stores_zone(day: date, tz: str, rules: Rules, hours: tuple[int, int]) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()
    assert opening_hours(day, tz, rules) == (midnight + hours[0] * H, midnight + hours[1] * H)


def test_opening_hours_on_a_daylight_saving_day() -> None:
    # Berlin, 2026-03-29: 02:00 becomes 03:00; open 10:00-22:00 is 12 real hours, 08:00-20:00 UTC
    lo, hi = opening_hours(date(2026, 3, 29), "Europe/Berlin", Rules())
    assert (hi - lo, lo % 86400) == (12 * H, 8 * H)


OPEN = (START + 10 * H, START + 22 * H)  # 144 slots


@pytest.mark.parametrize(("spans", "cut", "counts"), [
    ([(10, 22)], START + 30 * H, (144, 144)),  # read all day
    ([(10, 12), (14, 22)], START + 30 * H, (120, 144)),  # down two hours
    ([(0, 24)], START + 30 * H, (144, 144)),  # outside the opening hours: not counted
    ([], START + 30 * H, (0, 144)),  # never read
    ([(10, 22)], START + 15 * H + 100, (61, 61)),  # today at 15:01:40: the slots begun by then
    ([(10, 12)], START + 15 * H, (24, 60)),  # today at 15:00, down since 12:00 (the 15:00 slot not begun)
    ([(10, 22)], START + 22 * H - 10, (144, 144)),  # the last poll at 21:59:50: its slot counts
    ([(10, 22)], START + 9 * H, (0, 0)),  # before opening: nothing to count
])
def test_coverage_counts_the_opening_slots_read_by_the_cut(spans: list[tuple[float, float]], cut: float,
                                                           counts: tuple[int, int]) -> None:
    assert coverage_counts(read(*spans), [OPEN], cut) == counts


def test_coverage_over_days_and_stores() -> None:
    days = [OPEN, (OPEN[0] + 24 * H, OPEN[1] + 24 * H)]
    assert coverage_counts(read((10, 22)), days, START + 60 * H) == (144, 288)  # the second day not read
    assert coverage([(144, 288), (100, 100)]) == pytest.approx(244 / 388)
    assert coverage([(0, 0)]) is None  # no opening slot yet: nothing to say
    assert coverage([]) is None
