"""The Celery app factory and the tasks, in-process (eager: no broker configured)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from analytics import report, store
from analytics.celery_app import make_celery, worker_queues
from keliu import config, db
from tests.analytics.builders import DAY, DAY_START, tvisit
from tests.analytics.test_pipeline import passer

NAMES = {"analytics.ingest_batch", "analytics.ingest_polls", "analytics.close_visits", "analytics.rollup_store",
         "analytics.rollup_mall", "analytics.detect_staff", "analytics.purge", "analytics.dispatch"}


def test_factory_without_broker_runs_eagerly_with_safe_task_options(tmp_path):
    cfg = config.load(overrides={"database_url": f"sqlite:///{tmp_path / 'k.db'}"}, env={})
    app = make_celery(cfg)
    assert app.conf.task_always_eager is True
    assert app.conf.timezone == "Asia/Shanghai"
    assert NAMES <= set(app.tasks)
    for name in NAMES:
        t = app.tasks[name]
        assert (t.acks_late, t.reject_on_worker_lost, t.max_retries) == (True, True, 8)
        assert sa.exc.OperationalError in t.autoretry_for
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
    assert worker_queues(cfg) == ["analytics", "celery"]


def test_factory_with_broker_is_not_eager_and_sets_the_visibility_timeout(tmp_path):
    cfg = config.load(overrides={"analytics": {"broker_url": "redis://127.0.0.1:1/0", "visibility_timeout": 600}},
                      env={})
    app = make_celery(cfg)  # no connection is opened here
    assert app.conf.task_always_eager is False
    assert app.conf.broker_transport_options["visibility_timeout"] == 600
    assert app.conf.task_default_queue == "analytics"
    assert app.amqp.router.route({}, "analytics.rollup_store")["queue"].name == "analytics"


def test_eager_pipeline_through_the_task_names(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    cfg = config.load(overrides={"database_url": url}, env={})
    engine = db.make_engine(url)
    db.upgrade(engine)
    app = make_celery(cfg)
    batch = [{f: getattr(s, f) for f in s.__slots__} for s in tvisit("a", 11 * 3600, 10) + passer("p", 12 * 3600)]
    assert app.tasks["analytics.ingest_batch"].delay(batch).get() == len(batch)
    assert app.tasks["analytics.ingest_batch"].delay(batch).get() == 0
    now = DAY_START + 43200
    assert app.tasks["analytics.dispatch"].delay("stores", now).get() == 2  # s1 and the configured demo-store
    assert app.tasks["analytics.dispatch"].delay("malls", now).get() == 2
    assert app.tasks["analytics.dispatch"].delay("staff", now + 86400).get() == 2
    assert report.store_day(engine, "s1", DAY)["visitors"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.device_days)).scalar() == 2
    out = app.tasks["analytics.purge"].delay(now + 100 * 86400).get()
    assert out["sightings"] == len(batch)
    engine.dispose()


def test_the_aps_poll_records_through_their_task(tmp_path):
    from sensor import store as sensor_store
    from sensor.stations import poll_to_dict
    from tests.analytics.builders import tpolls

    url = f"sqlite:///{tmp_path / 'k.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    app = make_celery(config.load(overrides={"database_url": url}, env={}))
    records = [poll_to_dict(p) for p in tpolls(10 * 3600, 11 * 3600, every=60.0)]
    assert app.tasks["analytics.ingest_polls"].delay(records).get() == 60
    assert app.tasks["analytics.ingest_polls"].delay(records).get() == 60  # again: the same 12 rows
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sensor_store.station_polls)).scalar() == 12
    # a record that is not one fails the task, naming it, and stores nothing of its batch
    bad = records[:1] + [{**records[1], "device": "d1"}]
    with pytest.raises(ValueError, match="fields"):
        app.tasks["analytics.ingest_polls"].delay(bad).get()
    engine.dispose()
