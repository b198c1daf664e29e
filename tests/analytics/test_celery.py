"""Real Celery workers (``keliu analytics worker`` subprocesses) on Redis and on RabbitMQ, results in PostgreSQL:
two workers share the stores; a worker killed with -9 mid-task changes nothing in the final metrics."""
from __future__ import annotations

import shutil
import time
import uuid

import pytest
import sqlalchemy as sa

from analytics import pipeline, store
from analytics.celery_app import make_celery
from keliu import config, db
from keliu.testing.simulate import Scenario, simulate
from sensor import store as sensor_store
from tests.analytics.builders import DAY, DAY_START, from_frames
from tests.analytics.servers import celery_worker

pytestmark = pytest.mark.integration
NOW = DAY_START + 3 * 86400
STORES = ("s1", "s2", "s3", "s4")


def sightings_of(store_id: str, seed: int, scale: float = 0.3):
    sc = Scenario(passersby_per_day=int(1200 * scale), visitors_per_day=int(240 * scale))
    frames, _ = simulate(sc, seed)
    return from_frames(frames, store_id)


def single_process(tmp_path, batches, template) -> dict:
    """The reference: every store-day computed in this process on SQLite (a copy of the migrated template)."""
    shutil.copy(template, tmp_path / "ref.db")
    url = f"sqlite:///{tmp_path / 'ref.db'}"
    cfg = config.load(overrides={"database_url": url}, env={})
    engine = db.make_engine(url)
    db.upgrade(engine)
    for b in batches.values():
        sensor_store.insert_sightings(engine, b)
    for s in batches:
        pipeline.rollup_store(engine, cfg, s, DAY, NOW)
    out = rollups_of(engine)
    engine.dispose()
    return out


def rollups_of(engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.rollups)).mappings().all()
    return {(r["store"], r["period"], r["start"]): {k: v for k, v in r.items() if k != "updated_at"} for r in rows}


def setup(tmp_path, postgres_url, broker, **extra):
    (tmp_path / "keliu.toml").write_text("")
    queue = f"t-{uuid.uuid4().hex[:10]}"
    env = {"KELIU_DATABASE_URL": postgres_url, "KELIU_ANALYTICS_BROKER_URL": broker,
           "KELIU_ANALYTICS_RESULT_BACKEND": "db+" + postgres_url, "KELIU_ANALYTICS_QUEUE": queue,
           "KELIU_CONFIG": str(tmp_path / "keliu.toml"), **extra}
    engine = db.make_engine(postgres_url)
    db.upgrade(engine)
    cfg = config.load(env=env)
    return env, engine, make_celery(cfg), queue


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request):
    return request.getfixturevalue(f"{request.param}_url")


def test_two_workers_share_the_stores(tmp_path, migrated_postgres_url, broker, migrated_sqlite_template):
    batches = {s: sightings_of(s, i) for i, s in enumerate(STORES)}
    expected = single_process(tmp_path, batches, migrated_sqlite_template)
    env, engine, app, queue = setup(tmp_path, migrated_postgres_url, broker)
    for b in batches.values():
        sensor_store.insert_sightings(engine, b)
    with celery_worker(env, f"a1-{queue}@test", tmp_path / "w1.log", queues=queue, ready=False) as w1, \
            celery_worker(env, f"a2-{queue}@test", tmp_path / "w2.log", queues=queue, ready=False) as w2:
        w1.wait_ready()  # both start at once
        w2.wait_ready()
        results = [app.tasks["analytics.rollup_store"].delay(s, DAY.isoformat(), NOW) for s in STORES]
        got = [r.get(timeout=120) for r in results]
    assert [g["store"] for g in got] == list(STORES)
    assert all(g["rows"] == 313 for g in got)
    assert rollups_of(engine) == expected
    with engine.connect() as conn:  # the results are in PostgreSQL, with the worker that ran each task
        workers = conn.execute(sa.text("SELECT status, worker FROM celery_taskmeta")).all()
    assert len(workers) == len(STORES) and {w[0] for w in workers} == {"SUCCESS"}
    engine.dispose()


def _active(app, name: str) -> list[dict]:
    reply = app.control.inspect(destination=[name], timeout=1.0).active() or {}
    return reply.get(name, [])


def test_kill_9_mid_task_gives_the_single_process_result(tmp_path, migrated_postgres_url, broker, migrated_sqlite_template):
    batches = {s: sightings_of(s, 10 + i) for i, s in enumerate(STORES[:3])}
    expected = single_process(tmp_path, batches, migrated_sqlite_template)
    # Redis redelivers an unacknowledged task after the visibility timeout; RabbitMQ when the connection drops
    env, engine, app, queue = setup(tmp_path, migrated_postgres_url, broker, KELIU_ANALYTICS_VISIBILITY_TIMEOUT="5")
    ingest = app.tasks["analytics.ingest_batch"]
    dicts = [{f: getattr(x, f) for f in x.__slots__} for b in batches.values() for x in b]
    # the first task blocks on its INSERT until we let go: the kill lands inside a task (its message unacknowledged),
    # not between two (a task done, or the next one being fetched), whatever the machine's speed
    with engine.connect() as hold:
        hold.execute(sa.text(f"LOCK TABLE {sensor_store.sightings.name} IN EXCLUSIVE MODE"))
        with celery_worker(env, f"k1-{queue}@test", tmp_path / "k1.log", queues=queue) as w1:
            sent = [ingest.delay(dicts[i:i + 1500]) for i in range(0, len(dicts), 1500)]
            deadline = time.monotonic() + 60
            active: list[dict] = []
            while not active and time.monotonic() < deadline:
                active = _active(app, w1.name)
            assert active, "the worker never had a task in progress"
            w1.kill()
        hold.rollback()
    killed = {a["id"] for a in active}
    with celery_worker(env, f"k2-{queue}@test", tmp_path / "k2.log", queues=queue):
        inserted = sum(r.get(timeout=150) for r in sent)
        rolled = [app.tasks["analytics.rollup_store"].delay(s, DAY.isoformat(), NOW) for s in batches]
        for r in rolled:
            r.get(timeout=120)
    assert killed <= {r.id for r in sent}
    assert all(r.successful() for r in sent)
    assert inserted <= len(dicts)  # a task that ran to its commit before the kill inserts again as 0 new rows
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(sensor_store.sightings)).scalar()
    assert n == len(dicts)
    assert rollups_of(engine) == expected
    engine.dispose()


def test_sensor_celery_sink_to_worker_to_report(tmp_path, migrated_postgres_url, redis_url):
    """The sensor's Celery sink sends ``analytics.ingest_batch`` to our queue; our worker stores the sightings;
    the report reads what the pipeline made of them."""
    import json
    import os
    import subprocess
    import sys

    from keliu.testing.simulate import write_pcap
    from tests.conftest import ROOT

    sc = Scenario(passersby_per_day=300, visitors_per_day=60)
    frames, _ = simulate(sc, 9)
    write_pcap(tmp_path / "day.pcap", frames)
    env, engine, _app, queue = setup(tmp_path, migrated_postgres_url, redis_url)
    env = {**os.environ, **env, "KELIU_VAR_DIR": str(tmp_path / "var")}
    keliu = [sys.executable, "-m", "keliu.cli"]
    with celery_worker(env, f"e-{queue}@test", tmp_path / "e.log", queues=queue):
        subprocess.run(keliu + ["sensor", "replay", str(tmp_path / "day.pcap"), "--store", "demo-store", "--max"],
                       env=env, check=True, capture_output=True, cwd=ROOT, timeout=120)
        deadline = time.monotonic() + 60
        n = 0
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(sensor_store.sightings)).scalar() or 0
            if n >= len(frames):
                break
            time.sleep(0.5)
    assert n == len(frames)
    assert b"analytics.ingest_batch" in (tmp_path / "e.log").read_bytes()  # through the broker, not SQL
    out = subprocess.run(keliu + ["analytics", "report", "--store", "demo-store", "--date", DAY.isoformat()],
                         env=env, check=True, capture_output=True, text=True, cwd=ROOT, timeout=120)
    report = json.loads(out.stdout)
    assert report["visitors"] > 0 and report["passersby"] > report["visitors"]
    engine.dispose()


def test_the_sensors_celery_sink_stores_sightings_and_the_aps_polls(tmp_path, migrated_postgres_url, broker):
    """The sensor's Celery sink (exchange and routing key of the queue, as a fleet's router sends) into a real
    worker: the sightings through analytics.ingest_batch, the AP's poll records through analytics.ingest_polls;
    a batch of polls alone (nobody connected) too; sent twice, stored once."""
    from sensor.sinks import CelerySink
    from tests.analytics.builders import tpolls, tstation

    env, engine, _app, queue = setup(tmp_path, migrated_postgres_url, broker)
    sink = CelerySink(broker, queue)
    stations = tstation("w1", 11 * 3600, 5)
    polls = tpolls(11 * 3600, 11 * 3600 + 600, associated=1)
    with celery_worker(env, f"p-{queue}@test", tmp_path / "w.log", queues=queue):
        sink.deliver(stations, polls[:30])
        sink.deliver([], polls[30:])
        sink.deliver(stations, polls[:30])  # a batch sent again (acknowledged in the spool after a crash)
        deadline, got = time.monotonic() + 60, (0, 0)
        while time.monotonic() < deadline and got != (len(stations), 2):
            with engine.connect() as conn:
                got = (conn.execute(sa.select(sa.func.count()).select_from(sensor_store.sightings)).scalar(),
                       conn.execute(sa.select(sa.func.count()).select_from(sensor_store.station_polls)).scalar())
            time.sleep(0.3)
    assert got == (len(stations), 2)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sensor_store.station_polls).order_by(sensor_store.station_polls.c.slot)).all()
    assert [(r.first, r.last, r.stations) for r in rows] == [(polls[0].first, polls[29].last, 1),
                                                             (polls[30].first, polls[59].last, 1)]
    engine.dispose()


def test_a_worker_that_does_not_know_the_polls_task_drops_it_alone(tmp_path, migrated_postgres_url, broker,
                                                                     monkeypatch):
    """The upgrade order's premise (docs/SENSOR.md): a worker older than analytics.ingest_polls gets a task name it
    does not know (here one no worker knows); it logs it, drops that message and goes on storing the sightings."""
    from sensor import sinks
    from tests.analytics.builders import tpolls, tstation

    monkeypatch.setattr(sinks, "POLLS_TASK", "analytics.ingest_polls_of_a_newer_sensor")
    env, engine, _app, queue = setup(tmp_path, migrated_postgres_url, broker)
    sink = sinks.CelerySink(broker, queue)
    first, later = tstation("w1", 11 * 3600, 5), tstation("w2", 12 * 3600, 5)
    with celery_worker(env, f"o-{queue}@test", tmp_path / "w.log", queues=queue):
        sink.deliver(first, tpolls(11 * 3600, 11 * 3600 + 300))
        sink.deliver(later, tpolls(12 * 3600, 12 * 3600 + 300))  # the worker is still there
        deadline, n = time.monotonic() + 60, 0
        while time.monotonic() < deadline and n < len(first) + len(later):
            with engine.connect() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(sensor_store.sightings)).scalar()
            time.sleep(0.3)
    assert n == len(first) + len(later)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sensor_store.station_polls)).scalar() == 0
    log = (tmp_path / "w.log").read_text(errors="replace")
    assert "unregistered task" in log.lower() and "analytics.ingest_polls_of_a_newer_sensor" in log
    engine.dispose()
