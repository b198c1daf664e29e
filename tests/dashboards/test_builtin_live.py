"""Live occupancy (当前在店人数) through the dashboard's API, on SQLite and PostgreSQL: sightings stored "now" by
the app's injected clock show at once, without a rollup, with the visit rules, staff excluded and the band."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from analytics import store as astore
from analytics.bands import band
from analytics.days import local_day
from sensor import store as sensor_store
from sensor.records import Sighting
from tests.analytics.builders import DAY_START, dev, tsighting
from tests.dashboards.app import login, make_app

NOW = DAY_START + 18 * 3600.0  #: the app's clock


def at(ago: float, name: str, rssi: int, store: str = "s1") -> Sighting:
    """A sighting ``ago`` seconds before the app's clock."""
    return tsighting(NOW - DAY_START - ago, name, rssi, store)


def stay(name: str, since: float, rssi: int = -60, store: str = "s1") -> list[Sighting]:
    return [at(a, name, rssi, store) for a in range(int(since), -1, -60)]


def seed(engine: sa.Engine) -> None:
    batch = stay("a", 480) + [at(60, "b", -58), at(30, "p", -84), at(1200, "gone", -55)]  # s1
    batch += stay("z", 3000) + [at(45, "weak", -95)]  # s1: a staff device, and one below the passer-by threshold
    batch += [at(90, "a", -80, "s2"), at(40, "d", -55, "s2"), at(20, "b", -60, "s2")]  # s2: b in both stores
    # two phones on the guest Wi-Fi (hostapd, sensor.stations): one 3 min ago, one 20 min ago (outside the window)
    batch += [replace(at(a, name, -50), sid=f"conn-{name}", sensor="sensor-1-ap", basis="connected")
              for a, name in ((180, "wifi1"), (1200, "wifi2"), (30, "a"))]
    sensor_store.insert_sightings(engine, batch)
    with engine.begin() as conn:  # the pipeline flagged z staff today (same-day rule)
        conn.execute(astore.device_days.insert().values(
            store="s1", day=local_day(NOW, "Asia/Shanghai"), device=dev("z"), visited=False, staff=True,
            auto_staff=True, loyalty=0, first_seen=NOW - 3000, hours=0))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Flask]:
    url = request.getfixturevalue("migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url")
    app = make_app(tmp_path, database_url=url, clock=NOW)
    engine = app.extensions["keliu"].engine
    seed(engine)
    yield app
    engine.dispose()


def test_store_live_occupancy_is_fresh_and_follows_the_visit_rules(app: Flask) -> None:
    c = login(app, "boss-s1")
    live = c.get("/api/v1/stores/s1/live?lang=en").json
    assert {k: live[k] for k in ("store", "as_of", "window_s", "occupancy", "staying", "nearby", "staff_excluded",
                                 "basis", "last_sighting_age_s")} == {
        "store": "s1", "as_of": NOW, "window_s": 600, "occupancy": 2, "staying": 1, "nearby": 1,
        "staff_excluded": 1, "basis": "linked_devices", "last_sighting_age_s": 0.0}
    assert live["band"] == band("visitors", 2.0)
    assert (live["label"], live["text"]) == ("In store now", "2")
    assert live["band_text"] == f"likely {int(live['band'][0])}–{-int(-live['band'][1] // 1)}"
    assert live["detail"] == "last 10 min · staying ≥ 5 min: 1 · passing by: 1"
    assert live["heard"] == "sensor heard 0 s ago"
    # the AP's stations: counted apart and exactly (a is on the Wi-Fi and among the probes: not added twice)
    assert (live["connected"], live["connected_text"]) == (2, "on the guest Wi-Fi now: 2 (exact)")
    with app.extensions["keliu"].engine.connect() as conn:  # the day's visits read the probes only
        _ts, devs, _rssi = astore.load_sightings(conn, "s1", NOW - 3600, NOW + 1)
    assert dev("wifi1") not in devs and devs.count(dev("a")) == 9
    # a shopper who walks in now is counted on the next request: no visit has to close, no rollup has to run
    sensor_store.insert_sightings(app.extensions["keliu"].engine, [at(2, "new", -57)])
    assert c.get("/api/v1/stores/s1/live").json["occupancy"] == 3
    # the last minute only: a (every minute up to now), b (60 s ago: on the edge) and the newcomer
    assert c.get("/api/v1/stores/s1/live?window=1").json["occupancy"] == 3
    # the same figure in the store's dashboard view, in Chinese
    view = c.get("/api/v1/stores/s1/dashboard?lang=zh-CN").json
    assert (view["live"]["label"], view["live"]["occupancy"]) == ("当前在店人数", 3)
    assert view["live"]["detail"].startswith("最近 10 分钟 · 停留满 5 分钟：1 · 路过：1")


def test_mall_live_occupancy_counts_each_shopper_once(app: Flask) -> None:
    c = login(app, "ops-m1")
    live = c.get("/api/v1/malls/m1/live?lang=en").json
    per_store = {s["id"]: s["value"] for s in live["stores"]}
    assert per_store == {"s1": 2, "s2": 2}  # s2: d and b (a only heard weakly there)
    assert live["occupancy"] == 3  # a, b, d: b counted once though inside both stores
    assert live["nearby"] == 1 and live["band"] == band("visitors", 3.0)  # p (a is inside s1, not nearby)
    assert live["label"] == "In the mall now"
    view = c.get("/api/v1/malls/m1/dashboard?lang=zh-CN").json
    assert view["live"]["label"] == "商场当前人数"
    assert [(s["id"], s["name"], s["text"]) for s in view["live"]["stores"]] == [("s1", "星巴克", "2"),
                                                                                ("s2", "优衣库", "2")]


def test_live_occupancy_keeps_tenancy_and_checks_the_window(app: Flask) -> None:
    s1 = login(app, "boss-s1")
    assert s1.get("/api/v1/stores/s2/live").status_code == 403
    assert s1.get("/api/v1/malls/m1/live").status_code == 403
    for bad in ("0", "61", "abc", "-5", "1.5"):
        r = s1.get(f"/api/v1/stores/s1/live?window={bad}")
        assert r.status_code == 400 and "window" in r.json["message"], bad
    s3 = login(app, "boss-s3")  # a store never heard: 0 in store, and the page says nothing was heard
    live = s3.get("/api/v1/stores/s3/live?lang=en").json
    assert (live["occupancy"], live["last_sighting_age_s"], live["heard"]) == (
        0, None, "nothing heard in the last 10 min")
    assert app.test_client().get("/api/v1/stores/s1/live").status_code in (302, 401)
