"""The pipeline stores each store-day's connected visits when it rolls the day up (``connected_days``,
``connected_visits``, revision analytics_0007_connroll), on a real database (SQLite, PostgreSQL): keyed station ids
only, replaced (never duplicated) when the day is rolled up again, purged with the polls; the store's, mall's and
operator's reports read them for the days rolled up, without reading a poll, and read exactly what they read when
they made every day from its polls."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import pipeline, report, store
from analytics.days import day_bounds
from keliu import config, db, tenants
from sensor import store as sensor_store
from tests.analytics.builders import (
    DAY,
    DAY_START,
    TWO_MALLS,
    dev,
    statements,
    tenant_db,
    tstation,
    tvisit,
    two_malls,
)

H = 3600
DAY2 = DAY + timedelta(days=1)
STORES = TWO_MALLS
NOW = DAY_START + 2 * 86400 + 3600



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, two_malls) as made:
        yield made


def probes() -> list[Any]:
    return (tvisit("a", 11 * H, 30) + tvisit("a", 12 * H, 20, store="s2") + tvisit("c", 14 * H, 25, store="s2")
            + tvisit("e", 15 * H, 30, store="s3") + tvisit("a", 11 * H + 86400, 30))


def stations() -> list[Any]:
    """w1 at s1 and s2, w2 at s2 and w3 under s2's 10 min; x on a full shift at s1 (staff), on a break at s2 (off
    the minute: the builders' sighting ids do not name the store); w9 at s3; on DAY2 w1 at s1 again."""
    return (tstation("w1", 11 * H, 30) + tstation("w1", 12 * H, 20, store="s2")
            + tstation("w2", 14 * H, 45, store="s2") + tstation("w3", 16 * H, 8, store="s2")
            + tstation("x", 10 * H, 12 * 60, every=60) + tstation("x", 13 * H + 5, 20, store="s2")
            + tstation("w9", 15 * H, 30, store="s3") + tstation("w1", 11 * H + 86400, 30))


def roll(cfg: config.Config, engine: sa.Engine, days: tuple[Any, ...] = (DAY, DAY2)) -> None:
    for d in days:
        for sid in STORES:
            pipeline.rollup_store(engine, cfg, sid, d, NOW)
        for mid in ("m1", "m2"):
            pipeline.rollup_mall(engine, mid, d, NOW)


def stored(engine: sa.Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    d, v = store.connected_days.c, store.connected_visits.c
    with engine.connect() as conn:
        days = [tuple(r) for r in conn.execute(sa.select(store.connected_days).order_by(d.store, d.day))]
        rows = [tuple(r) for r in conn.execute(sa.select(v.store, v.day, v.device, v.start, v.end, v.staff).order_by(
            v.store, v.day, v.device, v.start))]
    return days, rows


def reports(engine: sa.Engine, cfg: config.Config) -> list[Any]:
    """Every report that carries a connected block, over DAY, DAY2 and both."""
    out: list[Any] = []
    for a, b in ((DAY, DAY), (DAY2, DAY2), (DAY, DAY2)):
        out += [report.store_range(engine, sid, a, b, cfg) for sid in STORES]
        out += [report.mall_range(engine, "m1", a, b, cfg), report.operator_range(engine, a, b, cfg)]
    out.append(report.store_day(engine, "s2", DAY, cfg))
    return out


def test_the_pipeline_stores_the_days_connected_visits(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes() + stations())
    roll(cfg, engine)
    days, rows = stored(engine)
    # every store-day rolled up has its row (s2 and s3 had no probe on DAY2: not rolled up, no row)
    assert [(s, d, n) for s, d, n in days] == [("s1", DAY, 2), ("s1", DAY2, 1), ("s2", DAY, 4), ("s3", DAY, 1)]
    at = day_bounds(DAY, "Asia/Shanghai")[0] / 1000
    want = [("s1", DAY, dev("w1"), at + 11 * H, at + 11 * H + 1800, False),
            ("s1", DAY, dev("x"), at + 10 * H, at + 22 * H, True),  # staff: its first and last poll
            ("s1", DAY2, dev("w1"), at + 86400 + 11 * H, at + 86400 + 11 * H + 1800, False),
            ("s2", DAY, dev("w1"), at + 12 * H, at + 12 * H + 1200, False),
            ("s2", DAY, dev("w2"), at + 14 * H, at + 14 * H + 2700, False),
            ("s2", DAY, dev("x"), at + 13 * H + 5, at + 13 * H + 1205, False),  # w3's 8 min: no visit at s2
            ("s3", DAY, dev("w9"), at + 15 * H, at + 15 * H + 1800, False)]
    assert sorted(rows) == sorted(want)
    # keyed station ids, the ones the polls carry; nothing else of the station is stored
    assert {c["name"] for c in sa.inspect(engine).get_columns("connected_visits")} == {
        "store", "day", "device", "start", "end", "staff"}
    assert {r[2] for r in rows} <= {s.device for s in stations()}


def test_rolling_a_day_up_again_replaces_its_connected_visits(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes() + stations())
    roll(cfg, engine)
    first = stored(engine)
    roll(cfg, engine)
    assert stored(engine) == first  # the same rows, once
    # more polls: w1 stays 25 min longer at s1 and w4 comes; the day's rows are replaced, none is left of before
    sensor_store.insert_sightings(engine, tstation("w1", 11 * H + 1805, 25) + tstation("w4", 17 * H, 20))
    roll(cfg, engine, (DAY,))
    days, rows = stored(engine)
    at = day_bounds(DAY, "Asia/Shanghai")[0] / 1000
    s1 = [(r[2], r[3], r[4]) for r in rows if r[:2] == ("s1", DAY) and not r[5]]
    assert sorted(s1) == sorted([(dev("w1"), at + 11 * H, at + 11 * H + 3305), (dev("w4"), at + 17 * H,
                                                                               at + 17 * H + 1200)])
    assert [r for r in days if r[:2] == ("s1", DAY)] == [("s1", DAY, 3)]
    assert len(rows) == len(first[1]) + 1
    assert report.store_day(engine, "s1", DAY, cfg)["connected"]["visitors"] == 2


def test_rolled_up_days_read_as_when_made_from_their_polls(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes() + stations())
    roll(cfg, engine)
    from_rows = reports(engine, cfg)
    with engine.begin() as conn:  # DAY as if rolled up before the connected visits were stored: from its polls
        conn.execute(sa.delete(store.connected_days).where(store.connected_days.c.day == DAY))
    assert reports(engine, cfg) == from_rows
    with engine.begin() as conn:  # every day from its polls, as the reports made them before
        conn.execute(sa.delete(store.connected_days))
    from_polls = reports(engine, cfg)
    assert from_polls == from_rows
    mall = report.mall_range(engine, "m1", DAY, DAY2, cfg)
    assert mall == from_rows[-3] and (mall["totals"]["connected"]["visitors"], mall["totals"]["connected"]["staff_excluded"]) == (3, 1)


def test_a_rolled_up_range_reads_no_poll(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes() + stations())
    roll(cfg, engine)
    with statements(engine, "sightings", "basis") as polls:
        s1 = report.store_range(engine, "s1", DAY, DAY2, cfg)
        mall = report.mall_range(engine, "m1", DAY, DAY, cfg)
        op = report.operator_range(engine, DAY, DAY, cfg)
        assert polls == []  # every store-day of these ranges is rolled up
        both = report.mall_range(engine, "m1", DAY, DAY2, cfg)  # s2 has no probe on DAY2: not rolled up
    assert len(polls) == 1
    assert (s1["connected"]["visitors"], mall["totals"]["connected"]["visitors"]) == (2, 2)
    assert (op["totals"]["connected"]["visitors"], both["totals"]["connected"]["visitors"]) == (3, 3)


def test_the_connected_visits_are_purged_with_the_polls(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes() + stations())
    roll(cfg, engine)
    # raw_retention_days (30) after DAY2 01:00 UTC (its 09:00 local): DAY's rows go, DAY2's stay (w1 at 11:00)
    out = pipeline.purge(engine, cfg, DAY_START + 30 * 86400 + 33 * H)
    days, rows = stored(engine)
    assert out["connected_visits"] == 6 and {r[1] for r in rows} == {d for _s, d, _n in days} == {DAY2}
    assert report.store_day(engine, "s1", DAY, cfg)["connected"]["visitors"] is None  # no poll, no row: no data


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_the_revision_upgrades_and_downgrades(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'k.db'}" if dialect == "sqlite" else str(request.getfixturevalue("postgres_url"))
    engine = db.make_engine(url)
    cfg = two_malls(url)
    try:
        db.upgrade(engine)
        tenants.sync(engine, cfg)
        command.downgrade(db.alembic_config(engine), "analytics_0006_stationcal")
        assert not {"connected_days", "connected_visits"} & set(sa.inspect(engine).get_table_names())
        # the polls of a day stored before the revision, read after it from the polls until rolled up again
        # stored as they were heard: none late (the late sightings' table is a later revision, analytics_0008)
        sensor_store.insert_sightings(engine, probes() + stations(), now=DAY_START)
        db.upgrade(engine)
        assert {"connected_days", "connected_visits"} <= set(sa.inspect(engine).get_table_names())
        before = report.mall_range(engine, "m1", DAY, DAY, cfg)
        roll(cfg, engine, (DAY,))
        assert report.mall_range(engine, "m1", DAY, DAY, cfg)["totals"]["connected"] == before["totals"]["connected"]
        assert len(stored(engine)[1]) == 6
        command.downgrade(db.alembic_config(engine), "analytics_0006_stationcal")
        assert not {"connected_days", "connected_visits"} & set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:  # the polls and the other rollups stay
            assert conn.execute(sa.select(sa.func.count()).select_from(sensor_store.sightings)).scalar() == len(
                probes() + stations())
            assert conn.execute(sa.select(sa.func.count()).select_from(store.rollups)).scalar() == 3 * 313
    finally:
        engine.dispose()
