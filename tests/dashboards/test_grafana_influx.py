"""Every Grafana panel's InfluxQL, variables substituted, against a real InfluxDB 1.x holding the known scenario."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.config import DashboardsConfig
from dashboards.grafana.boards import boards
from tests.analytics.servers import influxdb1
from tests.dashboards import scenario
from tests.dashboards.influx import Influx
from tests.dashboards.scenario import D1, D2, epoch

pytestmark = pytest.mark.integration

BOARDS = {b["uid"]: b for b in boards(DashboardsConfig()).values()}
VARS = {"keliu-store": {"mall": "m1", "store": "s1"}, "keliu-mall": {"mall": "m1"}, "keliu-fleet": {}}
CAP_S1 = 150 / 650
CAP_M1 = 205 / 925

#: (dashboard uid, panel title) -> rows; a row is (tag values..., [time,] values...), floats rounded to 4 places.
#: Time is kept for time series panels only.
EXPECTED: dict[tuple[str, str], list[tuple[Any, ...]]] = {
    ("keliu-store", "Passers-by"): [(500,)],
    ("keliu-store", "Visitors"): [(150,)],
    ("keliu-store", "Capture rate"): [(round(CAP_S1, 4),)],
    ("keliu-store", "Median dwell (latest day)"): [(600.0,)],
    ("keliu-store", "Wi-Fi logins"): [(18,)],
    ("keliu-store", "New members"): [(7,)],
    ("keliu-store", "Hourly traffic"): [(epoch(D1, 10), 100, 40), (epoch(D1, 11), 200, 60)],
    ("keliu-store", "Dwell time"): [(0, 95, 40, 15, 0)],
    ("keliu-store", "New vs repeat visitors (daily)"): [(epoch(D1), 60, 40), (epoch(D2), 30, 20)],
    ("keliu-store", "Median dwell (daily)"): [(epoch(D1), 900.0), (epoch(D2), 600.0)],
    ("keliu-store", "Funnel (daily): visitors → Wi-Fi logins → new members"): [
        (epoch(D1), 100, 12, 5), (epoch(D2), 50, 6, 2)],
    ("keliu-store", "Sensors"): [("s1-a", 12.5, 2.0, 3)],
    ("keliu-mall", "Passers-by (sum of stores)"): [(720,)],
    ("keliu-mall", "Visitors (sum of stores)"): [(205,)],
    ("keliu-mall", "Capture rate"): [(round(CAP_M1, 4),)],
    ("keliu-mall", "Wi-Fi logins"): [(25,)],
    ("keliu-mall", "New members"): [(8,)],
    ("keliu-mall", "New visitors"): [(135,)],
    ("keliu-mall", "Stores side by side"): [("s1", 500, 150, round(CAP_S1, 4), 18, 7),
                                            ("s2", 220, 55, round(55 / 275, 4), 7, 1)],
    ("keliu-mall", "Visitors by store (daily)"): [("s1", epoch(D1), 100), ("s1", epoch(D2), 50),
                                                  ("s2", epoch(D1), 25), ("s2", epoch(D2), 30)],
    ("keliu-mall", "Capture rate by store (daily)"): [
        ("s1", epoch(D1), 0.25), ("s1", epoch(D2), 0.2), ("s2", epoch(D1), 0.2), ("s2", epoch(D2), 0.2)],
    ("keliu-fleet", "Malls side by side"): [("m1", 720, 205, round(CAP_M1, 4), 25, 8),
                                            ("m2", 500, 200, round(200 / 700, 4), 40, 20)],
    ("keliu-fleet", "Visitors by mall (daily, sum of stores)"): [
        ("m1", epoch(D1), 125), ("m1", epoch(D2), 80), ("m2", epoch(D1), 200)],
    ("keliu-fleet", "Sensors not reporting for 15 minutes"): [("m1", "s1-a", "s1", 2.0), ("m2", "s3-a", "s3", 3600.0)],
}


def substitute(query: str, variables: dict[str, str], start: int, end: int) -> str:
    """What Grafana sends: $timeFilter as a time range, regex-escaped single values, $tz as given."""
    values = {"timeFilter": f"time >= {start}s AND time < {end}s", "tz": "Asia/Shanghai", **{
        k: re.escape(v) for k, v in variables.items()}}
    out = re.sub(r"\$(\w+)", lambda m: values[m.group(1)], query)
    assert re.search(r"\$\w", out) is None, out
    return out


def rows(result: dict[str, Any], keep_time: bool) -> list[tuple[Any, ...]]:
    (res,) = result["results"]
    assert "error" not in res, res
    out = []
    for series in res.get("series", []):
        tags = tuple(v for _, v in sorted(series.get("tags", {}).items()))
        for values in series["values"]:
            vals = [round(v, 4) if isinstance(v, float) else v for v in values]
            out.append(tags + tuple(vals if keep_time else vals[1:]))
    return sorted(out)


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    with influxdb1(Path(tmp_path_factory.mktemp("influx"))) as url:
        server = Influx(url)
        server.query("CREATE DATABASE keliu")
        server.write("keliu", scenario.influx_lines())
        yield server


def test_every_panel_has_an_expectation() -> None:
    panels = {(uid, p["title"]) for uid, b in BOARDS.items() for p in b["panels"]}
    assert panels == set(EXPECTED)


@pytest.mark.parametrize(("uid", "title"), sorted(EXPECTED))
def test_panel_query_returns_the_scenario_numbers(influx: Influx, uid: str, title: str) -> None:
    (panel,) = [p for p in BOARDS[uid]["panels"] if p["title"] == title]
    got: list[tuple[Any, ...]] = []
    for t in panel["targets"]:
        q = substitute(t["query"], VARS[uid], *scenario.RANGE)
        got += rows(influx.query(q, "keliu"), keep_time=panel["type"] == "timeseries")
    assert got == sorted(EXPECTED[(uid, title)])


def tag_values(result: dict[str, Any]) -> list[str]:
    """Grafana merges the per-measurement series of SHOW TAG VALUES into one de-duplicated list."""
    return sorted({v[1] for s in result["results"][0]["series"] for v in s["values"]})


def test_chained_variables(influx: Influx) -> None:
    (mall, store, _tz) = BOARDS["keliu-store"]["templating"]["list"]
    assert tag_values(influx.query(mall["query"], "keliu")) == ["m1", "m2"]
    for m, stores in (("m1", ["s1", "s2"]), ("m2", ["s3"])):
        q = substitute(store["query"], {"mall": m}, 0, 0)
        assert tag_values(influx.query(q, "keliu")) == stores


def test_panels_agree_with_the_analytics_report_on_real_rollups(influx: Influx, tmp_path: Path) -> None:
    """The same sightings through analytics' pipeline: rollup rows → analytics.influx.lines → InfluxDB → panels."""
    import sqlalchemy as sa

    from analytics import influx as analytics_influx
    from analytics import report, store
    from keliu import config, db, tenants
    from tests.dashboards.app import keliu_config
    from tests.dashboards.realdata import DAY, seed

    cfg = config.load(overrides=keliu_config(tmp_path), env={})
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    seed(engine, cfg)
    with engine.connect() as conn:
        rollup_rows = [dict(r) for r in conn.execute(sa.select(store.rollups)).mappings()]
        # as analytics.rollup_store writes them: no point for an hour not heard yet (after the newest sighting)
        points = [p for sid in sorted({r["store"] for r in rollup_rows})
                  for p in analytics_influx.lines([r for r in rollup_rows if r["store"] == sid],
                                                  store.last_sighting(conn, sid))]
    influx.query("CREATE DATABASE real")
    influx.write("real", points)
    day = (scenario.epoch(DAY), scenario.epoch(DAY) + 86400)
    r = report.store_range(engine, "s1", DAY, DAY)
    engine.dispose()

    def panel(uid: str, title: str, variables: dict[str, str]) -> list[tuple[Any, ...]]:
        (p,) = [p for p in BOARDS[uid]["panels"] if p["title"] == title]
        q = substitute(p["targets"][0]["query"], variables, *day)
        return rows(influx.query(q, "real"), keep_time=p["type"] == "timeseries")

    s1 = {"mall": "m1", "store": "s1"}
    assert panel("keliu-store", "Visitors", s1) == [(r["visitors"],)] == [(3,)]
    assert panel("keliu-store", "Passers-by", s1) == [(r["passersby"],)]
    assert panel("keliu-store", "Capture rate", s1) == [(round(r["capture_rate"], 4),)]
    assert panel("keliu-store", "Median dwell (latest day)", s1) == [(r["median_dwell_s"],)]
    assert panel("keliu-store", "Dwell time", s1) == [tuple(r["dwell_buckets"].values())]
    hourly = panel("keliu-store", "Hourly traffic", s1)
    # the hours heard, in order; the report's later hours are None and the panel has no point there
    heard = [v for v in r["hourly_visitors"] if v is not None]
    assert 0 < len(heard) < 24 and r["hourly_visitors"][len(heard):] == [None] * (24 - len(heard))
    assert [v for _t, _p, v in hourly] == heard
    assert [p for _t, p, _v in hourly] == [p for p in r["hourly_passersby"] if p is not None]
    by_store = panel("keliu-mall", "Stores side by side", {"mall": "m1"})
    assert [(s, v) for s, _p, v, *_ in by_store] == [("s1", 3), ("s2", 2)]

