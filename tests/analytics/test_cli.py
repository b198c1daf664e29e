"""``keliu analytics``: report (JSON and table), the run loop with its clean stop, worker/beat without a broker;
every command on the database named by KELIU_DATABASE_URL. Also the ``[analytics]`` configuration."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics import store
from analytics.cli import analytics
from keliu import config, db
from keliu.errors import ConfigError
from sensor import store as sensor_store
from tests.analytics.builders import DAY, DAY_START, tvisit
from tests.analytics.test_pipeline import passer, seed
from tests.conftest import ROOT

KEYS = {"visitors", "passersby", "capture_rate", "median_dwell_s", "dwell_buckets", "new_visitors",
        "repeat_visitors", "staff_excluded", "wifi_logins", "new_members"}
KELIU = [sys.executable, "-m", "keliu.cli"]


def envof(tmp_path, url):
    # the seed's stores (s1, s2 in mall m1), s1 this router's store
    (tmp_path / "keliu.toml").write_text(
        '[sensor]\nstore = "s1"\n[[malls]]\nid = "m1"\n[[stores]]\nid = "s1"\nmall = "m1"\n'
        '[[stores]]\nid = "s2"\nmall = "m1"\n', encoding="utf-8")
    return {"KELIU_DATABASE_URL": url, "KELIU_CONFIG": str(tmp_path / "keliu.toml"),
            "KELIU_VAR_DIR": str(tmp_path / "var")}


def seeded(url):
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed(engine)
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_report_json_on_the_database_of_the_environment(tmp_path, request, backend):
    url = request.getfixturevalue("migrated_sqlite_url" if backend == "sqlite" else "migrated_postgres_url")
    seeded(url)
    env = envof(tmp_path, url)
    out = subprocess.run(KELIU + ["analytics", "report", "--store", "s1", "--date", DAY.isoformat()],
                         env={**os.environ, **env}, capture_output=True, text=True, cwd=ROOT, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert KEYS <= set(report)
    assert (report["visitors"], report["passersby"]) == (2, 2)


def test_report_defaults_to_the_configured_store_and_today(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seeded(url)
    res = CliRunner().invoke(analytics, ["report"], env=envof(tmp_path, url))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert out["store"] == "s1" and out["date"] == today.isoformat()
    assert out["visitors"] is None  # nothing heard today: no data, not 0


@pytest.mark.parametrize("args", [["--store", "nosuch"], ["--store", "nosuch", "--date", "2026-01-05"]])
def test_report_of_an_unknown_store_is_a_configuration_error(tmp_path, args):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    env = {**os.environ, **envof(tmp_path, url)}
    out = subprocess.run(KELIU + ["analytics", "report", *args], env=env, capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "keliu: stores: no store with id 'nosuch' (configured: s1, s2)\n"


def test_report_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seeded(url)
    res = CliRunner().invoke(analytics, ["report", "--store", "s1", "--date", DAY.isoformat(), "--format", "table"],
                             env=envof(tmp_path, url))
    assert res.exit_code == 0, res.output
    lines = dict(line.split(None, 1) for line in res.output.splitlines())
    assert lines["visitors"] == "2" and lines["capture_rate"] == "0.500"
    assert lines["dwell_buckets"].startswith("<5m=0  5-20m=1")


@pytest.mark.parametrize("cmd", ["worker", "beat"])
def test_worker_and_beat_need_a_broker(tmp_path, cmd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env.update(envof(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"))
    out = subprocess.run(KELIU + ["analytics", cmd], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60,
                         check=False)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("keliu: analytics.broker_url: ")


def test_run_loop_rolls_up_today_and_stops_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    now = time.time()
    midnight = datetime.now(timezone(timedelta(hours=8))).replace(hour=0, minute=0, second=0, microsecond=0)
    offset = now - midnight.timestamp() - 3600  # an hour ago, store-local
    batch = [s.__class__(**{**{f: getattr(s, f) for f in s.__slots__}, "ts": s.ts - DAY_START + midnight.timestamp()})
             for s in tvisit("a", max(offset - 900, 0), 10) + passer("p", max(offset, 60))]
    sensor_store.insert_sightings(engine, batch)
    env = {**os.environ, **envof(tmp_path, url)}
    # -v: the progress line of every run (quiet without it, see test_analytics_run_is_quiet_by_default)
    proc = subprocess.Popen(KELIU + ["-v", "analytics", "run", "--interval", "1"], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stderr.readline()  # type: ignore[union-attr]
        assert "rolled up" in first, first + proc.stderr.read()  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.strip().endswith("stopped") and rest == ""
    with engine.connect() as conn:
        day = conn.execute(sa.select(store.rollups.c.day, store.rollups.c.passersby).where(
            store.rollups.c.period == "1d", store.rollups.c.store == "s1")).all()
    assert day == [(midnight.date(), 1)]
    engine.dispose()


def test_analytics_run_is_quiet_by_default(tmp_path):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    env = {**os.environ, **envof(tmp_path, url)}
    out = subprocess.run(KELIU + ["analytics", "run", "--once"], env=env, cwd=ROOT, text=True, capture_output=True, check=False,
                         timeout=120)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out


def test_per_store_rules_and_validation():
    cfg = config.load(overrides={"analytics": {"visit_rssi": -60, "stay_rssi": -66, "staff_devices": ["aa"],
                                               "stores": [{"id": "k", "min_dwell_s": 120, "staff_devices": ["bb"]}]}},
                      env={"KELIU_ANALYTICS_VISIT_GAP_S": "600"})
    k, other = cfg.analytics.rules_for("k"), cfg.analytics.rules_for("other")
    assert (k.min_dwell_s, k.visit_rssi, k.visit_gap_s, k.staff_devices) == (120, -60, 600, ("aa", "bb"))
    assert (other.min_dwell_s, other.staff_devices) == (300, ("aa",))
    with pytest.raises(ConfigError, match="analytics: stay_rssi"):
        config.load(overrides={"analytics": {"stay_rssi": -60}}, env={})
    with pytest.raises(ConfigError, match=r"analytics.stores\[0\].min_dwell_s: must be positive"):
        config.load(overrides={"analytics": {"stores": [{"id": "k", "min_dwell_s": 0}]}}, env={})
    with pytest.raises(ConfigError, match="analytics.close_hour"):
        config.load(overrides={"analytics": {"close_hour": 25}}, env={})
