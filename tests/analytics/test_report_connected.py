"""The store's day and range reports carry ``connected`` (the AP's own stations, exact, basis ``connected_stations``)
on a real database (SQLite, PostgreSQL): computed from the day's connected sightings alone, with the store's visit
rules, and never added to the probe-based figures, which stay exactly what they were without any station."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import pipeline, report, store
from analytics.days import day_bounds
from keliu import config
from sensor import store as sensor_store
from tests.analytics.builders import DAY, one_store, statements, tenant_db, tstation, tvisit

H = 3600
DAY2 = DAY + timedelta(days=1)



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, one_store) as made:
        yield made


def probes() -> list[Any]:
    """The sensor's probe-based devices of DAY and DAY2: the connected phones are among them under other ids."""
    return (tvisit("p-a", 11 * H, 30) + tvisit("p-b", 12 * H, 45) + tvisit("p-c", 15 * H, 8)
            + tvisit("p-a", 11 * H + 86400, 20))


def stations() -> list[Any]:
    """The AP's stations: w1 30 min, w2 90 min with a 10 min break (one visit), w3 8 min (< the store's 10 min),
    and on DAY2 w4 for 20 min."""
    return (tstation("w1", 11 * H, 30) + tstation("w2", 12 * H, 40) + tstation("w2", 12 * H + 50 * 60, 40)
            + tstation("w3", 15 * H, 8) + tstation("w4", 11 * H + 86400, 20))


def roll(cfg: config.Config, engine: sa.Engine) -> None:
    now = day_bounds(DAY2, "Asia/Shanghai")[1] / 1000 + 3600
    for d in (DAY, DAY2):
        pipeline.rollup_store(engine, cfg, "s1", d, now)


def visit_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text('SELECT store, device, start, "end", dwell_s FROM visits '
                                                       "ORDER BY store, device, start")).all()]


def without_connected(out: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in out.items() if k not in ("connected", "hourly_connected")}


def test_connected_block_beside_unchanged_probe_figures(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes())
    roll(cfg, engine)
    before_day = report.store_day(engine, "s1", DAY, cfg)
    before_range = report.store_range(engine, "s1", DAY, DAY2, cfg)
    visits_before = visit_rows(engine)
    assert before_day["visitors"] == 2 and before_day["connected"]["visitors"] is None  # no station: no data
    assert before_range["connected"]["median_dwell_s"] is None
    assert before_day["hourly_connected"] == before_range["hourly_connected"] == [None] * 24

    sensor_store.insert_sightings(engine, stations())
    roll(cfg, engine)
    day = report.store_day(engine, "s1", DAY, cfg)
    rng = report.store_range(engine, "s1", DAY, DAY2, cfg)
    # the probe-based figures (and their bands and bases) are exactly as they were
    assert without_connected(dict(day)) == without_connected(dict(before_day))
    assert without_connected(dict(rng)) == without_connected(dict(before_range))
    assert day["connected"] == {
        "basis": "connected_stations", "visitors": 2, "visits": 2, "median_dwell_s": (1800 + 5400) / 2,
        "dwell_buckets": {"<5m": 0, "5-20m": 0, "20-60m": 1, "1-6h": 1, ">6h": 0}, "staff_excluded": 0,
        "calibration": None, "coverage": None, "last_poll": None}
    assert rng["connected"] == {
        "basis": "connected_stations", "visitors": 3, "visits": 3, "median_dwell_s": 1800.0,
        "dwell_buckets": {"<5m": 0, "5-20m": 0, "20-60m": 2, "1-6h": 1, ">6h": 0}, "staff_excluded": 0,
        "calibration": None, "coverage": None, "last_poll": None}
    # present per hour: w1 in hour 11, w2 from 12:00 to 13:30 (one visit across its break) in 12 and 13; w3's 8 min
    # is no visit. DAY2 (w4 in hour 11) is heard up to 11:20, its newest sighting: its later hours are no data
    assert day["hourly_connected"] == [0] * 11 + [1, 1, 1] + [0] * 10
    assert rng["hourly_connected"] == [0] * 11 + [2, 1, 1] + [0] * 10
    assert report.store_day(engine, "s1", DAY2, cfg)["hourly_connected"] == [0] * 11 + [1] + [None] * 12
    # a day the pipeline rolled up reads as it stored it, with the store's rules, with or without the configuration
    # (as the day's other figures); a day not rolled up (here: rolled up before the connected visits were stored)
    # is made from its polls, and without the configuration the default rules apply (5 min: w3's 8 min is a visit)
    assert report.store_day(engine, "s1", DAY)["connected"] == day["connected"]
    with engine.begin() as conn:
        conn.execute(sa.delete(store.connected_days).where(store.connected_days.c.day == DAY))
    assert report.store_day(engine, "s1", DAY)["connected"]["visitors"] == 3
    # the pipeline's visits (probe-based) hold no station
    assert visit_rows(engine) == visits_before


def test_the_connected_rows_have_their_own_index(env: tuple[config.Config, sa.Engine]) -> None:
    _cfg, engine = env
    idx = {i["name"]: i for i in sa.inspect(engine).get_indexes("sightings")}
    assert idx["ix_sightings_connected"]["column_names"] == ["store", "ts"]


def test_a_range_reads_its_stations_in_one_query(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, stations())
    with statements(engine, "sightings") as sent:
        out = report.store_range(engine, "s1", DAY - timedelta(days=30), DAY2 + timedelta(days=30), cfg)
    assert out["connected"]["visitors"] == 3  # no rollup needed: computed from the sightings at report time
    connected = [s for s in sent if "basis" in s]
    assert len(connected) == 1
