"""The Celery tasks of analytics (thin edges over ``analytics.pipeline``), explicitly named.

Every task is idempotent, acknowledged late, rejected (so redelivered) when its worker is lost, and retried with
exponential backoff on database and InfluxDB errors. Days travel as ISO strings, times as epoch seconds.

    analytics.ingest_batch(batch)            store a sensor batch (list of sighting dicts); idempotent on sid
    analytics.ingest_polls(records)          store the AP's poll records (the station list heard by 5-minute
                                             slot, no device); idempotent (merged by min and max)
    analytics.close_visits(store, day, now)  recompute the store-day's visits, marking the closed ones
    analytics.rollup_store(store, day, now)  visits, device days, 5 min / hour / day rollups (+ InfluxDB),
                                             the connected stations' visits
    analytics.rollup_mall(mall, day, now)    a mall-day's shoppers once across stores, and the transitions
    analytics.detect_staff(store, day)       the day's staff and fixed-device flags
    analytics.purge(now)                     retention of raw sightings, visits, connected visits, the AP's
                                             poll records, device days
    analytics.dispatch(kind, now)            the beat's fan-out: one task per store (or mall) and day, today,
                                             yesterday and the late days recorded (analytics.late)
    analytics.accesslog_anchor(now)          the access log's daily signed anchor (keliu.accesslog)
    analytics.accesslog_purge(now)           the access and NAT log's retention, with a signed purge record
"""
from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from celery import Celery, Task
from sqlalchemy.engine import Engine

from analytics import influx, pipeline
from analytics import store as store_tables
from analytics.days import local_day
from analytics.errors import AnalyticsServiceError
from keliu import db
from keliu.accesslog import signing
from keliu.accesslog import store as accesslog
from keliu.config import Config

_ENGINES: dict[str, Engine] = {}
RETRY: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (sa.exc.OperationalError, sa.exc.InterfaceError, AnalyticsServiceError),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


def config_of(task: Task) -> Config:
    cfg = getattr(task.app, "keliu_config", None)
    assert isinstance(cfg, Config), "analytics tasks run on the app of analytics.celery_app.make_celery"
    return cfg


def engine_of(task: Task) -> Engine:
    """One engine per database URL and process, created on first use (never at import)."""
    url = config_of(task).database_url
    if url not in _ENGINES:
        _ENGINES[url] = db.make_engine(url)
    return _ENGINES[url]


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def ingest_batch(self: Task, batch: list[dict[str, Any]]) -> int:
    return pipeline.ingest(engine_of(self), batch)


def ingest_polls(self: Task, records: list[dict[str, Any]]) -> int:
    return pipeline.ingest_polls(engine_of(self), records)


def close_visits(self: Task, store: str, day: str, now: float | None = None) -> int:
    return pipeline.close_visits(engine_of(self), config_of(self), store, date.fromisoformat(day), _now(now))


def rollup_store(self: Task, store: str, day: str, now: float | None = None) -> dict[str, Any]:
    cfg = config_of(self)
    rows = pipeline.rollup_store(engine_of(self), cfg, store, date.fromisoformat(day), _now(now))
    a = cfg.analytics
    if a.influx_url and rows:
        with engine_of(self).connect() as conn:
            heard = store_tables.last_sighting(conn, store)
        influx.write(a.influx_url, a.influx_token, a.influx_org, a.influx_bucket, influx.lines(rows, heard))
    daily = next((r for r in rows if r["period"] == "1d"), None)
    return {"store": store, "day": day, "rows": len(rows),
            "visitors": daily["visitors"] if daily else 0, "passersby": daily["passersby"] if daily else 0}


def rollup_mall(self: Task, mall: str, day: str, now: float | None = None) -> dict[str, Any]:
    out = pipeline.rollup_mall(engine_of(self), mall, date.fromisoformat(day), _now(now))
    return {"mall": mall, "day": day, "visitors": out["visitors"], "transitions": len(out["transitions"])}


def detect_staff(self: Task, store: str, day: str) -> int:
    return pipeline.detect_staff(engine_of(self), config_of(self), store, date.fromisoformat(day))


def purge(self: Task, now: float | None = None) -> dict[str, int]:
    return pipeline.purge(engine_of(self), config_of(self), _now(now))


def accesslog_purge(self: Task, now: float | None = None) -> int:
    """The access and NAT log's retention: records older than ``[accesslog] retention_days`` go, a signed purge
    record stays (keliu.accesslog)."""
    cfg = config_of(self)
    with engine_of(self).begin() as conn:
        return accesslog.purge(conn, signing.signer(cfg.var_path), datetime.fromtimestamp(_now(now), UTC),
                               cfg.accesslog.retention_days)


def accesslog_anchor(self: Task, now: float | None = None) -> int:
    """The access log's daily signed anchor of its head."""
    cfg = config_of(self)
    with engine_of(self).begin() as conn:
        return accesslog.anchor(conn, signing.signer(cfg.var_path), datetime.fromtimestamp(_now(now), UTC))


def dispatch(self: Task, kind: str, now: float | None = None) -> int:
    """Fan out one task per active store (``stores``, ``staff``) or mall (``malls``) and day; returns how many.
    ``stores`` and ``malls`` also send the late days recorded beyond the window (``pipeline.claim_late_stores``,
    ``claim_late_malls``): a late store-day's roll-up records its mall-day, which the next ``malls`` rolls up."""
    cfg, engine, t = config_of(self), engine_of(self), _now(now)
    settle = cfg.analytics.visit_gap_s + 600
    stores = pipeline.active_stores(engine, cfg, t - 2 * 86400)
    with engine.connect() as conn:
        ctxs = [pipeline.context(conn, cfg, s) for s in stores]
    if kind == "staff":
        for c in ctxs:
            day = local_day(t - 86400, c.tz)
            self.app.tasks["analytics.detect_staff"].delay(c.store, day.isoformat())
        return len(ctxs)
    if kind == "malls":
        window = list(dict.fromkeys((mall, day) for mall, tz in sorted({(c.mall, c.tz) for c in ctxs})
                                    for day in pipeline.days_to_roll(tz, t, settle)))
        days = window + pipeline.claim_late_malls(engine, cfg, t, set(window))
        task = self.app.tasks["analytics.rollup_mall"]
    else:
        window = [(c.store, day) for c in ctxs for day in pipeline.days_to_roll(c.tz, t, settle)]
        days = window + pipeline.claim_late_stores(engine, cfg, t, set(window))
        task = self.app.tasks["analytics.rollup_store"]
    for key, day in days:
        task.delay(key, day.isoformat(), t)
    return len(days)


def register(app: Celery) -> None:
    """Register the tasks on ``app`` under their explicit names."""
    for fn in (ingest_batch, ingest_polls, close_visits, rollup_store, rollup_mall, detect_staff, purge, dispatch,
               accesslog_purge, accesslog_anchor):
        app.task(name=f"analytics.{fn.__name__}", **RETRY)(fn)
