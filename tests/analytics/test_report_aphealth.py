"""The AP's station list heard or not (``station_polls``) in the reports, on a real database (SQLite, PostgreSQL):
an hour the poller was down is ``None`` in ``hourly_connected``, not 0; a day read with nobody connected is 0, not
``None``; the ``connected`` block says how much of the opening hours was read (``coverage``) and when last
(``last_poll``), for a store, its mall and the operator; the same before and after the day is rolled up; the
records go with the raw sightings at the retention purge."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import pipeline, report
from analytics.days import day_bounds
from keliu import config
from sensor import store as sensor_store
from tests.analytics.builders import DAY, DAY_START, one_store, tenant_db, tpolls, tstation, tvisit

H = 3600
DAY2 = DAY + timedelta(days=1)
#: DAY: read 10:00-12:30 and 14:00-22:00 (the poller down 12:30-14:00): 30 + 96 of the 144 opening slots
OUTAGE_COVERAGE = 126 / 144



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, one_store) as made:
        yield made


def seed(engine: sa.Engine) -> None:
    """DAY: two connected visitors (w1 at 11:00, w3 at 15:00), the poller down from 12:30 to 14:00; DAY2: the list
    read all the opening hours and nobody connected. Probes on both days (the sensor heard the store)."""
    probes = tvisit("p-a", 11 * H, 30) + tvisit("p-b", 15 * H, 30) + tvisit("p-a", 11 * H + 86400, 20)
    stations = tstation("w1", 11 * H, 30) + tstation("w3", 15 * H, 30)
    polls = tpolls(10 * H, 12.5 * H, associated=1) + tpolls(14 * H, 22 * H) + tpolls(34 * H, 46 * H)
    sensor_store.insert_sightings(engine, probes + stations, polls=polls)


def roll(cfg: config.Config, engine: sa.Engine) -> None:
    now = day_bounds(DAY2, "Asia/Shanghai")[1] / 1000 + 3600
    for d in (DAY, DAY2):
        pipeline.rollup_store(engine, cfg, "s1", d, now)
        pipeline.rollup_mall(engine, "m1", d, now)


def reports(cfg: config.Config, engine: sa.Engine) -> dict[str, Any]:
    return {"day": report.store_day(engine, "s1", DAY, cfg), "day2": report.store_day(engine, "s1", DAY2, cfg),
            "range": report.store_range(engine, "s1", DAY, DAY2, cfg),
            "mall": report.mall_range(engine, "m1", DAY, DAY2, cfg),
            "op": report.operator_range(engine, DAY, DAY, cfg)}


def connected_parts(out: dict[str, Any]) -> dict[str, Any]:
    """What the AP's stations and polls make of each report (the probe-based figures wait for the roll-up)."""
    mall, op = out["mall"], out["op"]
    return {k: (out[k]["connected"], out[k]["hourly_connected"]) for k in ("day", "day2", "range")} | {
        "mall": ([s["connected"] for s in mall["stores"]], mall["totals"]["connected"]),
        "op": op["totals"]["connected"]}


def test_an_outage_mid_day_and_a_day_nobody_connected(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    seed(engine)
    before = reports(cfg, engine)  # not rolled up yet: the polls' sightings read at report time
    roll(cfg, engine)
    after = reports(cfg, engine)
    assert connected_parts(before) == connected_parts(after)
    day, day2, rng = after["day"], after["day2"], after["range"]
    # DAY: 12:00 read (until 12:30), 13:00 not read at all: no data, where 0 would say nobody connected
    closed = [None] * 10
    assert day["hourly_connected"] == closed + [0, 1, 0, None, 0, 1, 0, 0, 0, 0, 0, 0] + [None, None]
    assert day["connected"]["visitors"] == 2
    assert day["connected"]["coverage"] == pytest.approx(OUTAGE_COVERAGE)
    assert day["connected"]["last_poll"] == pytest.approx(DAY_START + 22 * H - 10)
    # DAY2: read all day, nobody connected: 0 (not None) in the block and every hour read
    assert day2["hourly_connected"] == closed + [0] * 12 + [None, None]
    assert (day2["connected"]["visitors"], day2["connected"]["visits"], day2["connected"]["median_dwell_s"],
            day2["connected"]["coverage"]) == (0, 0, None, 1.0)
    # the range: each hour summed over the days that read it (13:00 read on DAY2 only)
    assert rng["hourly_connected"] == closed + [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + [None, None]
    assert rng["connected"]["visitors"] == 2
    assert rng["connected"]["coverage"] == pytest.approx((126 + 144) / 288)
    assert rng["connected"]["last_poll"] == pytest.approx(DAY_START + 46 * H - 10)
    # the mall (its one store) and the operator (DAY only)
    (s1,) = after["mall"]["stores"]
    assert s1["connected"]["coverage"] == after["mall"]["totals"]["connected"]["coverage"] == pytest.approx(
        (126 + 144) / 288)
    assert after["op"]["totals"]["connected"]["coverage"] == pytest.approx(OUTAGE_COVERAGE)
    assert after["op"]["totals"]["connected"]["last_poll"] == pytest.approx(DAY_START + 22 * H - 10)


def test_until_cuts_the_coverage_and_the_block(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    seed(engine)
    # DAY up to 13:00: read 10:00-12:30 of the 36 slots that ended: 30
    rng = report.store_range(engine, "s1", DAY, DAY, cfg, until=DAY_START + 13 * H)
    assert rng["connected"]["coverage"] == pytest.approx(30 / 36)
    assert rng["connected"]["visitors"] == 1  # w3 arrives at 15:00


def test_a_store_without_any_poll_keeps_the_stations_rule(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, tvisit("p-a", 11 * H, 30) + tstation("w1", 11 * H, 30))
    day = report.store_day(engine, "s1", DAY, cfg)
    # the stations' sightings, no poll recorded (a poller older than the records): as before, coverage unknown
    block = day["connected"]
    assert (block["visitors"], block["coverage"], block["last_poll"]) == (1, None, None)
    assert day["hourly_connected"][11] == 1 and day["hourly_connected"][10] == 0


def test_the_polls_go_with_the_raw_sightings(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    seed(engine)
    roll(cfg, engine)
    # raw_retention_days (30) after DAY2 01:00 UTC (its 09:00 local): DAY's polls go, DAY2's (from 10:00) stay
    out = pipeline.purge(engine, cfg, DAY_START + 30 * 86400 + 33 * H)
    assert out["station_polls"] == 30 + 96
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.min(sensor_store.station_polls.c.slot))).scalar()
    assert left == DAY_START + 34 * H
    assert report.store_day(engine, "s1", DAY2, cfg)["connected"]["coverage"] == 1.0
