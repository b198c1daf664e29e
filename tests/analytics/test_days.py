"""Store-local days (analytics.days): the day of an instant, and a day's bounds where the clocks shift."""
from __future__ import annotations

from datetime import UTC, date, datetime

from analytics.days import day_bounds, day_start, local_day


def test_a_day_is_the_store_local_calendar_day() -> None:
    shanghai_midnight = datetime(2026, 1, 4, 16, 0, tzinfo=UTC).timestamp()  # 2026-01-05 00:00 in Shanghai
    assert local_day(shanghai_midnight - 1, "Asia/Shanghai") == date(2026, 1, 4)
    assert local_day(shanghai_midnight, "Asia/Shanghai") == date(2026, 1, 5)
    assert local_day(shanghai_midnight, "UTC") == date(2026, 1, 4)
    assert day_start(date(2026, 1, 5), "Asia/Shanghai") == shanghai_midnight
    assert day_bounds(date(2026, 1, 5), "Asia/Shanghai") == (shanghai_midnight * 1000,
                                                             (shanghai_midnight + 86400) * 1000)


def test_where_the_clocks_shift_a_day_has_23_or_25_hours() -> None:
    spring = day_bounds(date(2026, 3, 8), "America/New_York")
    autumn = day_bounds(date(2026, 11, 1), "America/New_York")
    assert spring[1] - spring[0] == 23 * 3600 * 1000
    assert autumn[1] - autumn[0] == 25 * 3600 * 1000
    assert local_day(spring[1] / 1000 - 1, "America/New_York") == date(2026, 3, 8)
