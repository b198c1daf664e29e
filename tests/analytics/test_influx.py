"""InfluxDB line protocol: the pure renderer, then the same lines in VictoriaMetrics (through influxdb-client's
/api/v2/write) and in InfluxDB 1.x (InfluxQL)."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from analytics import influx, pipeline
from analytics.errors import InfluxError
from keliu import db
from sensor import store as sensor_store
from tests.analytics.builders import DAY, DAY_START, tvisit
from tests.analytics.servers import free_port, influxdb1, victoria_metrics
from tests.analytics.test_pipeline import make_cfg, passer

ROW = {"store": "s 1", "mall": "m,1", "period": "1h", "start": 1767578400, "visitors": 3, "passersby": 9,
       "new_visitors": 2, "repeat_visitors": 1, "wifi_logins": 1, "new_members": 0, "capture_rate": 0.25,
       "median_dwell_s": 900.0, "dwell_lt5m": 0, "dwell_5_20m": 2, "dwell_20_60m": 1, "dwell_1_6h": 0,
       "dwell_gt6h": 0, "visits": 3, "staff_excluded": 0, "device": "ffffffffffffffff"}


def test_lines_golden():
    (line,) = influx.lines([ROW])
    assert line == ("traffic,mall=m\\,1,period=1h,store=s\\ 1 visitors=3i,passersby=9i,new_visitors=2i,"
                    "repeat_visitors=1i,wifi_logins=1i,new_members=0i,dwell_lt5m=0i,dwell_5_20m=2i,"
                    "dwell_20_60m=1i,dwell_1_6h=0i,dwell_gt6h=0i,capture_rate=0.25,median_dwell_s=900.0 1767578400")


def test_no_device_id_ever_in_a_line():
    row = {**ROW, "store": "s1", "mall": "m1"}
    assert "ffffffffffffffff" not in influx.lines([row])[0]
    tags = influx.lines([row])[0].split(" ")[0].split(",")[1:]
    assert [t.split("=")[0] for t in tags] == ["mall", "period", "store"]


def test_no_point_for_an_hour_not_heard_yet():
    hours = [ROW | {"period": "1h", "start": ROW["start"] + 3600 * h} for h in range(3)]
    day = ROW | {"period": "1d"}
    got = influx.lines([day, *hours], heard_until=ROW["start"] + 3600 + 5)
    assert [line.rsplit(" ", 1)[1] for line in got] == [str(ROW["start"]), str(ROW["start"]),
                                                        str(ROW["start"] + 3600)]
    assert len(influx.lines([day, *hours])) == 4


def test_health_lines():
    (line,) = influx.health_lines([{"mall": "m1", "store": "s1", "sensor": "sensor-1", "ts": 5, "fps": 12.5,
                                    "drops": 0, "last_frame_age_s": 1.0}])
    assert line == "sensor_health,mall=m1,sensor=sensor-1,store=s1 fps=12.5,drops=0i,last_frame_age_s=1.0 5"


def test_unreachable_server_is_an_influx_error():
    with pytest.raises(InfluxError):
        influx.write(f"http://127.0.0.1:{free_port()}", None, "keliu", "keliu", influx.lines([ROW]))


def _day_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    cfg = make_cfg(url)
    engine = db.make_engine(url)
    db.upgrade(engine)
    sensor_store.insert_sightings(engine, tvisit("a", 11 * 3600, 10) + tvisit("b", 11 * 3600 + 60, 30) +
                           passer("p", 11 * 3600 + 900))
    rows = pipeline.rollup_store(engine, cfg, "s1", DAY, DAY_START + 3 * 86400)
    engine.dispose()
    return [r for r in rows if r["period"] in ("1h", "1d")]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


@pytest.mark.integration
def test_victoria_metrics_write_and_read_back(tmp_path):
    rows = _day_rows(tmp_path)
    with victoria_metrics(tmp_path) as base:
        influx.write(base, None, "keliu", "keliu", influx.lines(rows))
        _get(base + "/internal/force_flush")
        q = urllib.parse.urlencode({"match[]": '{__name__=~"traffic_.*"}', "start": "0"})
        series = [json.loads(x) for x in _get(f"{base}/api/v1/export?{q}").splitlines() if x]
    got = {(s["metric"]["__name__"], s["metric"]["period"], ts // 1000): v
           for s in series for ts, v in zip(s["timestamps"], s["values"])}
    for r in rows:
        for f in ("visitors", "passersby", "capture_rate", "median_dwell_s", "dwell_20_60m"):
            assert got[(f"traffic_{f}", r["period"], r["start"])] == pytest.approx(r[f])
    labels = {k for s in series for k in s["metric"]}
    assert labels <= {"__name__", "mall", "store", "period", "db"}
    assert {s["metric"]["store"] for s in series} == {"s1"}


@pytest.mark.integration
def test_influxdb1_loads_the_same_lines_and_answers_influxql(tmp_path):
    rows = _day_rows(tmp_path)
    with influxdb1(tmp_path) as base:
        req = urllib.request.Request(base + "/query", data=urllib.parse.urlencode(
            {"q": "CREATE DATABASE keliu"}).encode())
        urllib.request.urlopen(req, timeout=10).read()
        body = "\n".join(influx.lines(rows)).encode()
        w = urllib.request.Request(base + "/write?db=keliu&precision=s", data=body)
        assert urllib.request.urlopen(w, timeout=10).status == 204
        q = urllib.parse.urlencode({"db": "keliu", "epoch": "s", "q":
                                    "SELECT sum(visitors), sum(passersby) FROM traffic WHERE period = '1h' "
                                    "AND store = 's1'"})
        (res,) = json.loads(_get(f"{base}/query?{q}"))["results"]
        q2 = urllib.parse.urlencode({"db": "keliu", "q": 'SHOW TAG VALUES FROM traffic WITH KEY = "store" '
                                     "WHERE mall = 'm1'"})
        tags = json.loads(_get(f"{base}/query?{q2}"))["results"][0]["series"][0]["values"]
        q3 = urllib.parse.urlencode({"db": "keliu", "epoch": "s", "q":
                                     "SELECT visitors, median_dwell_s FROM traffic WHERE period = '1d'"})
        (daily,) = json.loads(_get(f"{base}/query?{q3}"))["results"][0]["series"][0]["values"]
    (values,) = res["series"][0]["values"]
    hourly = [r for r in rows if r["period"] == "1h"]
    assert values[1:] == [sum(r["visitors"] for r in hourly), sum(r["passersby"] for r in hourly)]
    assert tags == [["store", "s1"]]
    d = next(r for r in rows if r["period"] == "1d")
    assert daily == [d["start"], d["visitors"], d["median_dwell_s"]]


@pytest.mark.integration
def test_rollup_task_writes_to_the_configured_server(tmp_path):
    from analytics.celery_app import make_celery
    from keliu import config

    url = f"sqlite:///{tmp_path / 'k.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    sensor_store.insert_sightings(engine, tvisit("a", 11 * 3600, 10) + passer("p", 11 * 3600 + 900))
    with victoria_metrics(tmp_path) as base:
        cfg = config.load(overrides={"database_url": url, "analytics": {"influx_url": base}}, env={})
        out = make_celery(cfg).tasks["analytics.rollup_store"].delay("s1", DAY.isoformat(), DAY_START + 86400).get()
        _get(base + "/internal/force_flush")
        q = urllib.parse.urlencode({"match[]": 'traffic_visitors{period="1d"}', "start": "0"})
        (series,) = [json.loads(x) for x in _get(f"{base}/api/v1/export?{q}").splitlines() if x]
    assert out["rows"] == 313
    assert series["metric"]["store"] == "s1" and series["values"] == [1]
    engine.dispose()
