"""The mall's and the operator's reports carry, per store row and in their totals, the error bands and bases of
the figures (``uncertainty``, :mod:`analytics.bands`) and, apart, the connected shoppers (``connected``, basis
``connected_stations``: a station connected at two stores of a mall on one day counts once), on a real database
(SQLite, PostgreSQL), with the connected sightings of every store read in one query per report."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import pipeline, report, store
from analytics.bands import band, uncertainty
from analytics.days import day_bounds
from keliu import config
from sensor import store as sensor_store
from tests.analytics.builders import DAY, TWO_MALLS, statements, tenant_db, tstation, tvisit, two_malls

H = 3600
DAY2 = DAY + timedelta(days=1)
STORES = TWO_MALLS



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, two_malls) as made:
        yield made


def probes() -> list[Any]:
    """The probe-based shoppers: a at s1 then s2, b at s1, c at s2, e at s3; on DAY2 a at s1 again."""
    return (tvisit("a", 11 * H, 30) + tvisit("a", 12 * H, 20, store="s2") + tvisit("b", 12 * H, 40)
            + tvisit("c", 14 * H, 25, store="s2") + tvisit("e", 15 * H, 30, store="s3")
            + tvisit("a", 11 * H + 86400, 30))


def stations() -> list[Any]:
    """The APs' stations (one device key for the mall, one guest SSID: a phone is one station id at every store of
    the day). w1 on the guest Wi-Fi at s1 (30 min) and at s2 (20 min); w2 at s2 for 45 min and w3 for 8 min (under
    s2's 10 min: no visit); x, an assistant at s1 all day (staff there, so at the mall), on a break at s2; w9 at s3;
    on DAY2 w1 at s1 again (a new day: counted again, as the visitors are)."""
    return (tstation("w1", 11 * H, 30) + tstation("w1", 12 * H, 20, store="s2")
            + tstation("w2", 14 * H, 45, store="s2") + tstation("w3", 16 * H, 8, store="s2")
            + tstation("x", 10 * H, 12 * 60, every=60) + tstation("x", 13 * H, 20, store="s2")
            + tstation("w9", 15 * H, 30, store="s3") + tstation("w1", 11 * H + 86400, 30))


def roll(cfg: config.Config, engine: sa.Engine) -> None:
    now = day_bounds(DAY2, "Asia/Shanghai")[1] / 1000 + 3600
    for d in (DAY, DAY2):
        for sid in STORES:
            pipeline.rollup_store(engine, cfg, sid, d, now)
        for mid in ("m1", "m2"):
            pipeline.rollup_mall(engine, mid, d, now)


def figures(out: Any) -> Any:
    """A report without its bands and connected blocks, at every level."""
    if isinstance(out, dict):
        return {k: figures(v) for k, v in out.items() if k not in ("uncertainty", "connected")}
    if isinstance(out, list):
        return [figures(v) for v in out]
    return out


def assert_bands(block: Any) -> None:
    """The block's uncertainty is the calibrated mapping of its own figures, which lie inside their bands."""
    unc = block["uncertainty"]
    assert unc == uncertainty(block)
    for k in ("visitors", "passersby", "capture_rate"):
        lo, hi = unc["bands"][k]
        assert (lo, hi) == tuple(band(k, block[k])) and lo <= block[k] <= hi
        assert unc["basis"][k] == "linked_devices"


def test_bands_and_connected_beside_unchanged_figures(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes())
    roll(cfg, engine)
    mall_before, op_before = report.mall_range(engine, "m1", DAY, DAY, cfg), report.operator_range(engine, DAY, DAY,
                                                                                                      cfg)
    assert mall_before["totals"]["connected"]["visitors"] is None  # no station: no data, not 0
    assert all(s["connected"]["visitors"] is None for s in mall_before["stores"])
    sensor_store.insert_sightings(engine, stations())
    roll(cfg, engine)
    mall = report.mall_range(engine, "m1", DAY, DAY, cfg)
    op = report.operator_range(engine, DAY, DAY, cfg)
    # the figures are exactly what they were without any station: connected is never added to them
    assert figures(mall) == figures(mall_before) and figures(op) == figures(op_before)
    assert (mall["totals"]["visitors"], [s["visitors"] for s in mall["stores"]]) == (3, [2, 2])  # a once
    for block in [mall["totals"], op["totals"], *mall["stores"]]:
        assert_bands(block)
    # a mall has no median dwell: no band and no basis for one; a store row has both
    assert "median_dwell_s" not in mall["totals"]["uncertainty"]["basis"]
    assert mall["stores"][0]["uncertainty"]["bands"]["median_dwell_s"][0] < mall["stores"][0]["median_dwell_s"]
    s1, s2 = mall["stores"]
    assert (s1["connected"]["visitors"], s1["connected"]["staff_excluded"]) == (1, 1)  # w1; x is staff
    assert (s2["connected"]["visitors"], s2["connected"]["visits"]) == (3, 3)  # w1, w2, x on its break; not w3
    assert s1["connected"]["calibration"] is None  # the store's own report has it
    # the mall: w1 once, x (staff at s1) nowhere; every other visit counted
    assert mall["totals"]["connected"] == {
        "basis": "connected_stations", "visitors": 2, "visits": 3, "median_dwell_s": 1800.0,
        "dwell_buckets": {"<5m": 0, "5-20m": 0, "20-60m": 3, "1-6h": 0, ">6h": 0}, "staff_excluded": 1,
        "calibration": None, "coverage": None, "last_poll": None}
    m2 = next(m for m in op["malls"] if m["id"] == "m2")
    assert m2["totals"]["connected"]["visitors"] == 1
    assert op["totals"]["connected"]["visitors"] == 2 + 1  # the operator sums its malls
    assert op["totals"]["connected"]["visits"] == 3 + 1
    # the mall's own report and the operator's row of it agree
    assert next(m for m in op["malls"] if m["id"] == "m1") == mall
    # over two days a station counts once per day (shopper-days, as the visitors)
    both = report.mall_range(engine, "m1", DAY, DAY2, cfg)
    assert both["totals"]["connected"]["visitors"] == 2 + 1
    assert both["totals"]["uncertainty"] == uncertainty(both["totals"])
    # the days the pipeline rolled up read as it stored them, with each store's rules, with or without the
    # configuration; a day not rolled up (here: rolled up before the connected visits were stored) is made from its
    # polls, and without the configuration the default rules apply (5 min: w3's 8 min at s2 is a visit)
    assert report.mall_range(engine, "m1", DAY, DAY)["totals"]["connected"] == mall["totals"]["connected"]
    with engine.begin() as conn:
        conn.execute(sa.delete(store.connected_days).where(store.connected_days.c.day == DAY))
    assert report.mall_range(engine, "m1", DAY, DAY)["totals"]["connected"]["visitors"] == 3


def test_the_connected_sightings_of_a_report_are_one_query(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, probes() + stations())
    roll(cfg, engine)
    with statements(engine, "sightings", "basis") as polls:
        mall = report.mall_range(engine, "m1", DAY - timedelta(days=30), DAY2 + timedelta(days=30), cfg)
        after_mall = len(polls)
        op = report.operator_range(engine, DAY - timedelta(days=30), DAY2 + timedelta(days=30), cfg)
    assert mall["totals"]["connected"]["visitors"] == 3 and op["totals"]["connected"]["visitors"] == 4
    assert (after_mall, len(polls)) == (1, 2)  # one for the mall's two stores, one for all three stores
