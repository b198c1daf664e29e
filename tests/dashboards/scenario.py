"""The known scenario of the dashboards' tests (pure data): two malls, three stores, two days.

``ROLLUPS`` is what analytics would have rolled up; ``influx_lines`` renders it with analytics' own renderer. Expected numbers in the tests are written out by hand from these figures.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
D1 = date(2026, 11, 17)
D2 = date(2026, 11, 18)
MALLS = {"m1": "万达广场", "m2": "Joy City"}
STORES = {"s1": ("m1", "星巴克"), "s2": ("m1", "优衣库"), "s3": ("m2", "Apple")}


def epoch(day: date, hour: int = 0) -> int:
    """UTC epoch seconds of a store-local hour."""
    return int(datetime.combine(day, time(hour), TZ).astimezone(UTC).timestamp())


def _day(passersby: int, visitors: int, new: int, wifi: int, members: int, median: float,
         dwell: tuple[int, int, int, int, int]) -> dict[str, Any]:
    return {"passersby": passersby, "visitors": visitors, "capture_rate": visitors / (visitors + passersby),
            "median_dwell_s": median, "new_visitors": new, "repeat_visitors": visitors - new,
            "wifi_logins": wifi, "new_members": members, "dwell_lt5m": dwell[0], "dwell_5_20m": dwell[1],
            "dwell_20_60m": dwell[2], "dwell_1_6h": dwell[3], "dwell_gt6h": dwell[4]}


#: (store, period, local start day, local start hour) -> fields
ROLLUPS: dict[tuple[str, str, date, int], dict[str, Any]] = {
    ("s1", "1d", D1, 0): _day(300, 100, 60, 12, 5, 900.0, (0, 60, 30, 10, 0)),
    ("s1", "1d", D2, 0): _day(200, 50, 30, 6, 2, 600.0, (0, 35, 10, 5, 0)),
    ("s2", "1d", D1, 0): _day(100, 25, 20, 3, 1, 420.0, (0, 20, 5, 0, 0)),
    ("s2", "1d", D2, 0): _day(120, 30, 25, 4, 0, 480.0, (0, 25, 5, 0, 0)),
    ("s3", "1d", D1, 0): _day(500, 200, 150, 40, 20, 1200.0, (0, 100, 60, 40, 0)),
    ("s1", "1h", D1, 10): _day(100, 40, 25, 5, 2, 840.0, (0, 25, 10, 5, 0)),
    ("s1", "1h", D1, 11): _day(200, 60, 35, 7, 3, 960.0, (0, 35, 20, 5, 0)),
}

#: (mall, store, sensor, UTC epoch) -> fields
HEALTH: dict[tuple[str, str, str, int], dict[str, Any]] = {
    ("m1", "s1", "s1-a", epoch(D1, 10)): {"fps": 11.0, "drops": 1, "last_frame_age_s": 1.5},
    ("m1", "s1", "s1-a", epoch(D1, 11)): {"fps": 12.5, "drops": 2, "last_frame_age_s": 2.0},
    ("m2", "s3", "s3-a", epoch(D1, 11)): {"fps": 0.0, "drops": 0, "last_frame_age_s": 3600.0},
}


def rollup_rows() -> list[dict[str, Any]]:
    """The scenario as the pipeline's rollup rows (mall, store, period, start, fields)."""
    return [{"mall": STORES[store][0], "store": store, "period": period, "start": epoch(day, hour), **values}
            for (store, period, day, hour), values in ROLLUPS.items()]


def health_records() -> list[dict[str, Any]]:
    return [{"mall": mall, "store": store, "sensor": sensor, "ts": ts, **values}
            for (mall, store, sensor, ts), values in HEALTH.items()]


def influx_lines() -> list[str]:
    """Exactly the line protocol analytics writes for the scenario: ``analytics.influx.lines``/``health_lines``."""
    from analytics import influx

    return influx.lines(rollup_rows()) + influx.health_lines(health_records())


RANGE = (epoch(D1), epoch(D2 + timedelta(days=1)))
