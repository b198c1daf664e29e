"""A period's reports up to a time of its last day (``until``), on a real database (SQLite, PostgreSQL): what the
dashboard sets beside today so far. The figures are those of the shoppers who had arrived by then, the connected
shoppers those whose visit had begun; the hourly lists stay whole; a mall's totals (each shopper once) are scaled
by its stores' share; with ``until`` after the period, nothing changes."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import pipeline, report
from analytics.bands import uncertainty
from analytics.days import day_bounds
from keliu import config
from sensor import store as sensor_store
from tests.analytics.builders import DAY, DAY_START, tenant_db, tstation, tvisit, two_stores

H = 3600
DAY2 = DAY + timedelta(days=1)
CUT = DAY_START + 13 * H  #: 13:00 store-local on DAY


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, two_stores) as (cfg, engine):
        batch = (
            # s1: a at 10:00 stays 30 min, b at 15:00 an hour; x (11:00) and y (16:00) pass by, weak and brief
            tvisit("a", 10 * H, 30) + tvisit("b", 15 * H, 60) + tvisit("x", 11 * H, 1, rssi=-88)
            + tvisit("y", 16 * H, 1, rssi=-88)
            # s2: a again at 10:45 (one shopper of the mall), c at 16:30; z passes by at 12:00
            + tvisit("a", 10 * H + 45 * 60, 30, store="s2") + tvisit("c", 16 * H + 30 * 60, 30, store="s2")
            + tvisit("z", 12 * H, 1, rssi=-88, store="s2")
            # s1's guest Wi-Fi: w1 from 10:05, w2 from 15:05, 20 min each
            + tstation("w1", 10 * H + 300, 20) + tstation("w2", 15 * H + 300, 20)
            # the next day: d at s1 at 09:00
            + tvisit("d", 86400 + 9 * H, 30))
        sensor_store.insert_sightings(engine, batch)
        now = day_bounds(DAY2, "Asia/Shanghai")[1] / 1000 + H
        for d in (DAY, DAY2):
            for sid in ("s1", "s2"):
                pipeline.rollup_store(engine, cfg, sid, d, now)
            pipeline.rollup_mall(engine, "m1", d, now)
        yield cfg, engine


def test_a_store_day_up_to_a_time(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    whole = report.store_range(engine, "s1", DAY, DAY, cfg)
    cut = report.store_range(engine, "s1", DAY, DAY, cfg, until=CUT)
    assert (whole["visitors"], whole["passersby"], whole["visits"]) == (2, 2, 2)
    assert (cut["visitors"], cut["passersby"], cut["visits"]) == (1, 1, 1)  # a and x had come by 13:00
    assert cut["capture_rate"] == 0.5
    with engine.connect() as conn:  # a's visit, the only one begun by 13:00
        a_dwell = conn.execute(sa.text("SELECT dwell_s FROM visits WHERE store = 's1' ORDER BY start")).scalars(
            ).first()
    assert cut["median_dwell_s"] == pytest.approx(a_dwell) and whole["median_dwell_s"] != cut["median_dwell_s"]
    assert sum(n for n in cut["dwell_buckets"].values() if n) == 1
    assert cut["new_visitors"] == 1
    assert (whole["connected"]["visitors"], cut["connected"]["visitors"]) == (2, 1)  # w1 only
    # the hours show the whole day, the rest of it to come included
    assert cut["hourly_visitors"] == whole["hourly_visitors"] and cut["hourly_visitors"][15] == 1
    assert cut["hourly_connected"] == whole["hourly_connected"]
    assert cut["uncertainty"] == uncertainty(cut)  # the bands of the figures shown


def test_the_days_after_the_cut_have_no_figures(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    cut = report.store_range(engine, "s1", DAY, DAY2, cfg, until=CUT)
    assert [(d["date"], d["visitors"]) for d in cut["days"]] == [(DAY.isoformat(), 1), (DAY2.isoformat(), None)]
    assert cut["visitors"] == 1 and cut["connected"]["visitors"] == 1
    assert report.store_range(engine, "s1", DAY, DAY2, cfg)["visitors"] == 3


def test_a_cut_after_the_period_changes_nothing(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    later = day_bounds(DAY2, "Asia/Shanghai")[1] / 1000 + 5 * H
    assert report.store_range(engine, "s1", DAY, DAY2, cfg, until=later) == report.store_range(
        engine, "s1", DAY, DAY2, cfg)
    assert report.mall_range(engine, "m1", DAY, DAY2, cfg, until=later) == report.mall_range(
        engine, "m1", DAY, DAY2, cfg)


def test_a_mall_and_the_operator_up_to_a_time(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    whole = report.mall_range(engine, "m1", DAY, DAY, cfg)
    cut = report.mall_range(engine, "m1", DAY, DAY, cfg, until=CUT)
    assert {s["id"]: (s["visitors"], s["passersby"]) for s in whole["stores"]} == {"s1": (2, 2), "s2": (2, 1)}
    assert {s["id"]: (s["visitors"], s["passersby"]) for s in cut["stores"]} == {"s1": (1, 1), "s2": (1, 1)}
    assert {s["id"]: s["connected"]["visitors"] for s in cut["stores"]} == {"s1": 1, "s2": None}
    # the mall's shoppers once: a, b, c all day; by 13:00 its stores had counted 2 of their 4 visitors and 2 of
    # their 3 passers-by, so the day's 3 and 3 are scaled by 1/2 and 2/3 (an estimate: the truth is a alone)
    assert (whole["totals"]["visitors"], whole["totals"]["passersby"]) == (3, 3)
    assert (cut["totals"]["visitors"], cut["totals"]["passersby"]) == (round(3 * 2 / 4), round(3 * 2 / 3))
    assert cut["totals"]["connected"]["visitors"] == 1
    assert cut["transitions"] == whole["transitions"]  # stored per day only: whole days
    op = report.operator_range(engine, DAY, DAY, cfg, until=CUT)
    assert op["totals"]["visitors"] == cut["totals"]["visitors"]
    assert op["malls"][0]["stores"] == cut["stores"]


def test_a_day_kept_by_the_hour_is_cut_at_the_last_whole_hour(env: tuple[config.Config, sa.Engine]) -> None:
    cfg, engine = env
    half_past_ten = DAY_START + 10 * H + 1800
    assert report.store_range(engine, "s1", DAY, DAY, cfg, until=half_past_ten)["visitors"] == 1  # a, at 10:00
    with engine.begin() as conn:  # history imported by the hour (the demo's) has no 5-minute rows
        conn.execute(sa.text("DELETE FROM rollups WHERE period = '5m'"))
    hourly = report.store_range(engine, "s1", DAY, DAY, cfg, until=half_past_ten)
    assert (hourly["visitors"], hourly["passersby"]) == (0, 0)  # 10:00-11:00 had not ended
    hourly = report.store_range(engine, "s1", DAY, DAY, cfg, until=CUT)
    assert (hourly["visitors"], hourly["passersby"]) == (1, 1)
