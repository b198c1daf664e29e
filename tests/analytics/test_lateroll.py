"""Late sightings are rolled up, on a real database (SQLite, PostgreSQL) and through the Celery tasks (eager, and a
real worker): a batch stored days late by either of the sensor's paths records its quarter hours, the next dispatch
rolls its store-day up and the one after its mall-day; a duplicate batch records nothing; a day past the raw
retention is dropped with a warning; a roll-up that failed (or was lost) is sent again once its lease is over; a
late batch committed while a roll-up reads is read by it or rolled up again."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import late, pipeline, report, store
from analytics.celery_app import make_celery
from keliu import config
from sensor import store as sensor_store
from sensor.sinks import SqlSink
from tests.analytics.builders import DAY, DAY_START, tenant_db, tvisit, two_stores

H = 3600
NOW = DAY_START + 3 * 86400 + 12 * H  # noon three days after DAY: the window is that day alone


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request: pytest.FixtureRequest) -> Iterator[tuple[config.Config, sa.Engine]]:
    with tenant_db(request, two_stores) as made:
        yield made


def batch(store_id: str = "s1") -> list[Any]:
    """Two visitors of DAY, as a sensor's spool delivers them days later."""
    return tvisit("a", 11 * H, 10, store=store_id) + tvisit("b", 15 * H, 30, store=store_id)


def as_dicts(sightings: list[Any]) -> list[dict[str, Any]]:
    return [{f: getattr(s, f) for f in s.__slots__} for s in sightings]


def marked(engine: sa.Engine) -> tuple[list[tuple[str, int]], list[tuple[str, date, str]]]:
    with engine.connect() as conn:
        slots = conn.execute(sa.select(sensor_store.late_sightings.c.store, sensor_store.late_sightings.c.slot)
                             .order_by(sensor_store.late_sightings.c.slot)).all()
        m = store.late_mall_days.c
        malls = conn.execute(sa.select(m.mall, m.day, m.store)).all()
    return [tuple(r) for r in slots], [tuple(r) for r in malls]  # type: ignore[misc]


def mall_visitors(engine: sa.Engine, mall: str, day: date) -> int | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(store.mall_days.c.visitors).where(
            store.mall_days.c.mall == mall, store.mall_days.c.day == day)).scalar()


def test_a_late_batch_through_the_celery_ingest_task_is_rolled_up_by_the_next_dispatches(env) -> None:
    cfg, engine = env
    app = make_celery(cfg)  # eager: the tasks run in this process, as `keliu analytics run` runs them
    assert DAY not in pipeline.days_to_roll("Asia/Shanghai", NOW, cfg.analytics.visit_gap_s + 600)
    assert app.tasks["analytics.ingest_batch"].delay(as_dicts(batch())).get() == len(batch())
    slots, _ = marked(engine)
    # 11:00-11:10 and 15:00-15:30 local (its last probe at 15:30): four quarter hours
    assert slots == [("s1", int(DAY_START + t)) for t in (11 * H, 15 * H, 15 * H + 900, 15 * H + 1800)]
    assert report.store_day(engine, "s1", DAY)["visitors"] is None  # stored, not rolled up
    # the malls first: nothing of the late day's mall yet (its stores' roll-up has not run)
    assert app.tasks["analytics.dispatch"].delay("malls", NOW).get() == 1  # m1 today
    assert mall_visitors(engine, "m1", DAY) is None
    assert app.tasks["analytics.dispatch"].delay("stores", NOW).get() == 3  # s1, s2 today; s1 on DAY
    r = report.store_day(engine, "s1", DAY)
    assert (r["visitors"], r["visits"]) == (2, 2)
    assert marked(engine) == ([], [("m1", DAY, "s1")])  # the store-day done, its mall-day to do
    assert app.tasks["analytics.dispatch"].delay("malls", NOW).get() == 2  # m1 today and on DAY
    assert mall_visitors(engine, "m1", DAY) == 2
    assert marked(engine) == ([], [])
    # nothing left: the next dispatches send the window only
    assert app.tasks["analytics.dispatch"].delay("stores", NOW + 300).get() == 2
    assert app.tasks["analytics.dispatch"].delay("malls", NOW + 300).get() == 1


def test_a_late_batch_through_the_sql_sink_is_rolled_up_and_a_duplicate_records_nothing(env) -> None:
    cfg, engine = env
    app = make_celery(cfg)
    SqlSink(engine).deliver(batch("s2"))
    assert [s for s, _slot in marked(engine)[0]] == ["s2"] * 4
    assert report.store_day(engine, "s2", DAY)["visitors"] is None
    app.tasks["analytics.dispatch"].delay("stores", NOW).get()
    assert report.store_day(engine, "s2", DAY)["visitors"] == 2
    assert marked(engine)[0] == []
    # the same batch delivered again (the spool's ack lost): no new row, no record, no roll-up
    SqlSink(engine).deliver(batch("s2"))
    assert sensor_store.insert_sightings(engine, batch("s2")) == 0
    assert marked(engine)[0] == []
    # and within a batch only the new rows count: one new late sighting records its quarter hour alone
    extra = tvisit("c", 20 * H, 1, store="s2")
    assert sensor_store.insert_sightings(engine, batch("s2") + extra) == len(extra)
    assert marked(engine)[0] == [("s2", int(DAY_START + 20 * H))]


def test_rows_stored_on_time_record_nothing(env) -> None:
    _cfg, engine = env
    for s in batch():  # each stored a minute after it was heard, or LATE_AFTER_S
        assert sensor_store.insert_sightings(engine, [s], now=s.ts + 60) == 1
    assert sensor_store.insert_sightings(engine, tvisit("c", 16 * H, 1),
                                         now=DAY_START + 16 * H + sensor_store.LATE_AFTER_S) == 2
    assert marked(engine) == ([], [])


def test_a_day_past_the_raw_retention_is_dropped_with_a_warning(env, caplog: pytest.LogCaptureFixture) -> None:
    cfg, engine = env
    app = make_celery(cfg)
    sensor_store.insert_sightings(engine, batch())
    later = DAY_START + (cfg.analytics.raw_retention_days + 1) * 86400 + 12 * H
    with caplog.at_level(logging.WARNING, logger="analytics.pipeline"):
        assert app.tasks["analytics.dispatch"].delay("stores", later).get() == 2  # the window only
    assert f"store s1, {DAY}: 4 quarter hours" in caplog.text and "raw_retention_days (30)" in caplog.text
    assert marked(engine)[0] == []  # not sent again
    assert report.store_day(engine, "s1", DAY)["visitors"] is None
    # the cut is at noon of DAY + 1: DAY + 2 is kept whole and rolled up
    sensor_store.insert_sightings(engine, tvisit("c", 86400 + 13 * H, 10) + tvisit("c", 2 * 86400 + 11 * H, 10))
    with caplog.at_level(logging.WARNING, logger="analytics.pipeline"):
        assert app.tasks["analytics.dispatch"].delay("stores", later).get() == 3
    assert f"store s1, {DAY + timedelta(days=1)}: 1 quarter hours" in caplog.text
    assert report.store_day(engine, "s1", DAY + timedelta(days=1))["visitors"] is None
    assert report.store_day(engine, "s1", DAY + timedelta(days=2))["visitors"] == 1


def test_a_roll_up_that_never_ran_is_sent_again_after_its_lease(env) -> None:
    cfg, engine = env
    sensor_store.insert_sightings(engine, batch())
    window = {("s1", DAY + timedelta(days=3))}
    # dispatched, but the task failed for good (or its message was lost): the records stay
    assert pipeline.claim_late_stores(engine, cfg, NOW, window) == [("s1", DAY)]
    assert len(marked(engine)[0]) == 4
    assert pipeline.claim_late_stores(engine, cfg, NOW + 300, window) == []  # in flight: not sent twice
    assert pipeline.claim_late_stores(engine, cfg, NOW + late.LEASE_S + 1, window) == [("s1", DAY)]
    # a new late batch of the day makes it due again at once
    sensor_store.insert_sightings(engine, tvisit("c", 12 * H, 10))
    assert pipeline.claim_late_stores(engine, cfg, NOW + late.LEASE_S + 2, window) == [("s1", DAY)]
    # the roll-up's commit clears them; a roll-up of another day does not
    pipeline.rollup_store(engine, cfg, "s1", DAY + timedelta(days=1), NOW)
    assert len(marked(engine)[0]) == 5
    pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    assert marked(engine) == ([], [("m1", DAY, "s1")])


def waiting_on_a_lock(engine: sa.Engine, query: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                    " AND datname = current_database() AND starts_with(query, :q)"), {"q": query}).scalar():
                return True
        time.sleep(0.05)
    return False


@pytest.mark.integration
def test_a_late_batch_committed_while_the_roll_up_starts_is_read_by_it(migrated_postgres_url: str) -> None:
    """PostgreSQL: the batch's record of an already recorded quarter hour locks it, so the roll-up's delete of the
    day's records waits for the batch's commit and then reads its sightings (with a skipped duplicate record, the
    roll-up would delete the record, miss the sightings and never roll them up)."""
    from keliu import db, tenants

    cfg = two_stores(migrated_postgres_url)
    engine = db.make_engine(migrated_postgres_url)
    try:
        db.upgrade(engine)
        tenants.sync(engine, cfg)
        sensor_store.insert_sightings(engine, tvisit("a", 11 * H, 10))  # recorded 11:00 and 11:15 (committed)
        with engine.connect() as ingest:
            tx = ingest.begin()
            sensor_store.insert_sightings(ingest, tvisit("b", 11 * H + 60, 10))  # the same quarter hours
            out: dict[str, Any] = {}
            roll = threading.Thread(target=lambda: out.update(
                rows=pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)))
            roll.start()
            assert waiting_on_a_lock(engine, "DELETE FROM late_sightings")  # the roll-up's first statement
            tx.commit()
        roll.join(timeout=60)
        daily = next(r for r in out["rows"] if r["period"] == "1d")
        assert daily["visitors"] == 2
        assert marked(engine) == ([], [("m1", DAY, "s1")])
    finally:
        engine.dispose()


@pytest.mark.integration
def test_a_real_worker_rolls_up_a_late_batch_and_then_its_mall_day(tmp_path, migrated_postgres_url: str,
                                                                   redis_url: str) -> None:
    """``keliu analytics worker`` on Redis, results in PostgreSQL: the late batch through ``analytics.ingest_batch``
    (stored at the worker's clock, months after DAY), the dispatches through the worker, their roll-ups queued."""
    from tests.analytics.servers import celery_worker
    from tests.analytics.test_celery import setup

    env, engine, app, queue = setup(tmp_path, migrated_postgres_url, redis_url)

    def wait_for(check: Any, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not check():
            time.sleep(0.2)
        return bool(check())

    try:
        with celery_worker(env, f"late-{queue}@test", tmp_path / "w.log", queues=queue):
            assert app.tasks["analytics.ingest_batch"].delay(as_dicts(batch())).get(timeout=60) == len(batch())
            assert len(marked(engine)[0]) == 4
            assert report.store_day(engine, "s1", DAY)["visitors"] is None
            # the configured demo-store today, and s1 on DAY (no mall configured: the unknown mall)
            assert app.tasks["analytics.dispatch"].delay("stores", NOW).get(timeout=60) == 2
            assert wait_for(lambda: report.store_day(engine, "s1", DAY)["visitors"] == 2)
            assert wait_for(lambda: marked(engine) == ([], [(pipeline.UNKNOWN_MALL, DAY, "s1")]))
            assert app.tasks["analytics.dispatch"].delay("malls", NOW).get(timeout=60) == 2
            assert wait_for(lambda: mall_visitors(engine, pipeline.UNKNOWN_MALL, DAY) == 2)
            assert wait_for(lambda: marked(engine) == ([], []))
    finally:
        engine.dispose()
