"""The late days the dispatcher rolls up beyond its window (pure): quarter hours to store-local days, the window's
days left to it, the days past retention dropped."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from analytics.days import day_start
from analytics.late import Plan, plan, store_days

SH, NY, KTM = "Asia/Shanghai", "America/New_York", "Asia/Kathmandu"
D = date(2026, 1, 5)


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("slot", "tz", "day"), [
    (utc(2026, 1, 4, 15, 45), SH, date(2026, 1, 4)),  # 23:45 local
    (utc(2026, 1, 4, 16, 0), SH, date(2026, 1, 5)),   # local midnight
    (utc(2026, 1, 5, 18, 0), KTM, date(2026, 1, 5)),  # +5:45: 23:45 local
    (utc(2026, 1, 5, 18, 15), KTM, date(2026, 1, 6)),
    (utc(2026, 3, 8, 4, 45), NY, date(2026, 3, 7)),   # 23:45 EST, before the spring-forward day
    (utc(2026, 3, 9, 3, 45), NY, date(2026, 3, 8)),   # 23:45 EDT: the 23-hour day
    (utc(2026, 3, 9, 4, 0), NY, date(2026, 3, 9)),
])
def test_a_quarter_hour_is_in_its_start_s_local_day(slot: int, tz: str, day: date) -> None:
    assert store_days([("s1", slot)], {"s1": tz}) == [("s1", day, tz)]


def test_store_days_keep_each_slot_s_store_and_zone() -> None:
    slots = [("s1", utc(2026, 1, 4, 16, 0)), ("s2", utc(2026, 1, 4, 16, 0)), ("s1", utc(2026, 1, 5, 15, 45))]
    assert store_days(slots, {"s1": SH, "s2": NY}) == [("s1", D, SH), ("s2", date(2026, 1, 4), NY), ("s1", D, SH)]


def test_day_start_is_local_midnight() -> None:
    assert day_start(D, SH) == utc(2026, 1, 4, 16, 0)
    assert day_start(date(2026, 3, 8), NY) == utc(2026, 3, 8, 5, 0)


CUT = day_start(date(2026, 1, 2), SH)  # the first day whose sightings are all kept


@pytest.mark.parametrize(("late", "window", "expected"), [
    ([], set(), Plan((), ())),
    # the window's days are rolled up by the window: not sent twice
    ([("s1", D, SH), ("s1", D, SH)], {("s1", D)}, Plan((), ())),
    ([("s1", D, SH), ("s1", date(2026, 1, 3), SH), ("s2", date(2026, 1, 3), SH)], {("s1", D)},
     Plan((("s1", date(2026, 1, 3)), ("s2", date(2026, 1, 3))), ())),
    # a store's window does not cover another store's day
    ([("s2", D, SH)], {("s1", D)}, Plan((("s2", D),), ())),
    # a day that began before the cut is dropped (its first sightings are purged), the first kept day is rolled
    ([("s1", date(2026, 1, 1), SH), ("s1", date(2026, 1, 2), SH)], set(),
     Plan((("s1", date(2026, 1, 2)),), (("s1", date(2026, 1, 1)),))),
    # by its own zone: New York's 2 January begins 13 hours after Shanghai's
    ([("s2", date(2026, 1, 1), NY)], set(), Plan((), (("s2", date(2026, 1, 1)),))),
    ([("s2", date(2026, 1, 2), NY)], set(), Plan((("s2", date(2026, 1, 2)),), ())),
    # a mall-day any of whose stores' days began before the cut is dropped
    ([("m1", date(2026, 1, 2), NY), ("m1", date(2026, 1, 1), SH), ("m1", date(2026, 1, 1), NY)], set(),
     Plan((("m1", date(2026, 1, 2)),), (("m1", date(2026, 1, 1)),))),
    ([("m1", date(2026, 1, 2), SH), ("m1", date(2026, 1, 2), "Pacific/Kiritimati")], set(),
     Plan((), (("m1", date(2026, 1, 2)),))),
])
def test_plan(late: list[tuple[str, date, str]], window: set[tuple[str, date]], expected: Plan) -> None:
    assert plan(late, window, CUT) == expected
