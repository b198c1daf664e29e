"""The dashboard's API on the real analytics pipeline: what it shows is what ``analytics.report`` says."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from analytics import report
from dashboards.builtin import i18n
from tests.dashboards.app import login, make_app
from tests.dashboards.realdata import DAY, LAST_POLL, NOW, PREVIOUS, seed


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = make_app(tmp_path_factory.mktemp("real"), clock=NOW)
    svc = app.extensions["keliu"]
    seed(svc.engine, svc.cfg)
    yield app
    svc.engine.dispose()


def texts(view: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {k["key"]: (k["text"], k["previous_text"]) for k in view["kpis"]}


def test_store_view_shows_the_analytics_report(app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    view = login(app, "boss-s1").get("/api/v1/stores/s1/dashboard?lang=en").json
    assert view["range"] == {"start": str(DAY), "end": str(DAY)}  # today, by the app's clock
    cur, prev = report.store_range(engine, "s1", DAY, DAY), report.store_range(engine, "s1", PREVIOUS, PREVIOUS)
    assert (cur["visitors"], cur["passersby"], prev["visitors"], prev["passersby"]) == (3, 2, 1, 1)
    assert texts(view) == {
        "passersby": ("2", "1"), "visitors": ("3", "1"),
        "capture_rate": (i18n.percent(cur["capture_rate"]), i18n.percent(prev["capture_rate"])),
        "median_dwell_s": ("26 min", "21 min"),  # edge-corrected: + one 60 s probe interval
        "new_visitors": (str(cur["new_visitors"]), str(prev["new_visitors"])),
        "repeat_visitors": (str(cur["repeat_visitors"]), str(prev["repeat_visitors"])),
        "wifi_logins": ("0", "0"), "new_members": ("0", "0")}
    assert cur["repeat_visitors"] == 1  # a came back after a week
    assert view["report"]["current"]["dwell_buckets"] == cur["dwell_buckets"]
    hourly = {r[0]["text"]: r[1]["value"] for r in next(t for t in view["tables"] if t["id"] == "hourly")["rows"]}
    assert [hourly[f"{h:02d}:00"] for h in range(24)] == cur["hourly_visitors"]
    # the hours after the newest sighting have not been heard: no data (null), not 0; every hour before has a number
    first_unheard = cur["hourly_visitors"].index(None)
    assert 0 < first_unheard < 24 and all(v is None for v in cur["hourly_visitors"][first_unheard:])
    assert all(v is not None for v in cur["hourly_visitors"][:first_unheard])
    assert view["status"]["empty"] is False
    assert view["status"]["age_s"] == pytest.approx(NOW - report.last_report(engine, "s1"))
    # the cards carry the report's bands; the hourly table its connected visitors present per hour (w1 in hour 11)
    unc = report.store_range(engine, "s1", DAY, DAY, app.extensions["keliu"].cfg)["uncertainty"]
    lo, hi = unc["bands"]["visitors"]
    assert {k["key"]: k["band"] for k in view["kpis"]}["visitors"] == [lo, hi] and lo <= 3 <= hi
    present = [r[4]["value"] for r in next(t for t in view["tables"] if t["id"] == "hourly")["rows"]]
    # (the AP's list read 10:00-12:00 and 13:00-16:00: no data in the hours not read, 0 where nobody was on it)
    assert present == view["report"]["current"]["hourly_connected"] == [None] * 10 + [0, 1, None, 0, 0, 0] + [
        None] * 8
    # the card: how much of the opening hours the list was read in (60 of the 72 slots up to its last read: the
    # figure a lower bound) and how long ago it was last read (the app's clock at 18:00)
    card = view["connected"]
    assert (card["coverage"], card["last_poll"]) == (pytest.approx(60 / 72), pytest.approx(LAST_POLL))
    assert card["health_text"] == ("station list read in 83.3% of the opening hours: at least this many · "
                                   f"station list last read {i18n.duration('en', NOW - LAST_POLL)} ago")
    zh = login(app, "boss-s1").get(f"/api/v1/stores/s1/dashboard?start={DAY}&lang=zh-CN").json["connected"]
    assert zh["health_text"] == ("营业时间内仅 83.3% 收到连接设备列表：实际人数不少于此 · "
                                 f"连接设备列表最近一次收到在{i18n.duration('zh-CN', NOW - LAST_POLL)}前")


def test_mall_view_shows_the_analytics_report(app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    view = login(app, "ops-m1").get(f"/api/v1/malls/m1/dashboard?start={DAY}&lang=en").json
    m = report.mall_range(engine, "m1", DAY, DAY)
    rows = next(t for t in view["tables"] if t["id"] == "stores")["rows"]
    assert [(r[0]["id"], r[2]["value"]) for r in rows] == [(s["id"], s["visitors"]) for s in m["stores"]]
    assert [(r[0]["id"], r[2]["text"]) for r in rows] == [("s1", "3"), ("s2", "2")]
    assert texts(view)["visitors"][0] == str(m["totals"]["visitors"]) == "4"  # shopper a counted once
    assert view["charts"]["transitions"] == [{"from": "星巴克", "to": "优衣库", "count": 1}]
    # bands of each store's visitors and of the totals; connected shoppers apart: w1 at both stores, once in the mall
    m = report.mall_range(engine, "m1", DAY, DAY, app.extensions["keliu"].cfg)
    assert [(r[7]["value"], r[8]["value"]) for r in rows] == [
        (math.floor(lo), math.ceil(hi)) for lo, hi in (s["uncertainty"]["bands"]["visitors"] for s in m["stores"])]
    assert [r[9]["value"] for r in rows] == [s["connected"]["visitors"] for s in m["stores"]] == [1, 1]
    assert view["connected"]["value"] == m["totals"]["connected"]["visitors"] == 1
    # the mall's coverage: its stores that recorded reads (s1; s2's poller records none)
    assert view["connected"]["coverage"] == pytest.approx(60 / 72) and "83.3%" in view["connected"]["health_text"]
    assert [s["connected"]["coverage"] for s in m["stores"]] == [pytest.approx(60 / 72), None]
    # ... and each store's row says where its figure is a lower bound (s2 records no reads: not claimed either way)
    assert [r[9]["text"] for r in rows] == ["≥ 1 (list read 83.3%)", "1"]
    zh = login(app, "ops-m1").get(f"/api/v1/malls/m1/dashboard?start={DAY}&lang=zh-CN").json
    assert next(t for t in zh["tables"] if t["id"] == "stores")["rows"][0][9]["text"] == "≥ 1（83.3% 时段有列表）"
    assert {k["key"]: k["band"] for k in view["kpis"]}["visitors"] == m["totals"]["uncertainty"]["bands"]["visitors"]


def test_operator_view_and_empty_store(app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    admin = login(app, "admin")
    view = admin.get(f"/api/v1/operator/dashboard?start={DAY}&lang=en").json
    op = report.operator_range(engine, DAY, DAY)
    rows = view["tables"][0]["rows"]
    assert [(r[0]["id"], r[2]["value"]) for r in rows] == [(m["id"], m["totals"]["visitors"]) for m in op["malls"]]
    # the operator's totals: the malls' summed, with the band of the sum and the connected shoppers apart
    assert [r[8]["value"] for r in rows] == [m["totals"]["connected"]["visitors"] for m in op["malls"]] == [1, None]
    assert view["connected"]["value"] == op["totals"]["connected"]["visitors"] == 1
    cards = {k["key"]: k for k in view["kpis"]}
    assert cards["visitors"]["value"] == 4 and cards["visitors"]["band"] == op["totals"]["uncertainty"]["bands"][
        "visitors"]
    s3 = login(app, "boss-s3").get("/api/v1/stores/s3/dashboard?lang=en").json
    assert s3["status"]["never"] is True and s3["status"]["empty"] is True


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_no_data_is_null_in_the_api_and_an_empty_cell_in_the_csv(tmp_path: Any, request: pytest.FixtureRequest,
                                                               backend: str) -> None:
    import csv
    import io
    from datetime import timedelta

    url = request.getfixturevalue("migrated_sqlite_url" if backend == "sqlite" else "migrated_postgres_url")
    app = make_app(tmp_path, database_url=url, clock=NOW)
    svc = app.extensions["keliu"]
    seed(svc.engine, svc.cfg)
    try:
        c = login(app, "boss-s1")
        empty = DAY - timedelta(days=3)  # the sensor heard nothing that day
        view = c.get(f"/api/v1/stores/s1/dashboard?start={empty}&end={empty}&lang=en").json
        kpis = {k["key"]: k for k in view["kpis"]}
        for key in ("passersby", "visitors", "capture_rate", "median_dwell_s", "new_visitors", "repeat_visitors"):
            assert kpis[key]["value"] is None and kpis[key]["text"] != "0", key
        assert kpis["wifi_logins"]["value"] == 0 and kpis["new_members"]["value"] == 0  # the portal's: numbers
        current = view["report"]["current"]
        assert current["hourly_visitors"] == current["hourly_passersby"] == [None] * 24
        assert view["charts"]["hourly"]["visitors"] == [None] * 24
        assert [s["value"] for s in view["charts"]["funnel"]] == [None, None, 0, 0]
        rows = list(csv.reader(io.StringIO(c.get(f"/api/v1/stores/s1/dashboard.csv?start={empty}&end={empty}&lang=en")
                                           .get_data(as_text=True)[1:])))
        visitors = next(r for r in rows if r and r[0] == "Visitors (count)")
        assert visitors[1] == ""  # no data: an empty cell, not 0
        # today (the app's clock): the hours after the newest sighting are null, the day's figures are numbers
        today = c.get("/api/v1/stores/s1/dashboard?lang=en").json
        hours = today["report"]["current"]["hourly_visitors"]
        assert today["report"]["current"]["visitors"] == 3 and None in hours and hours[-1] is None
    finally:
        svc.engine.dispose()
