"""The Celery tasks of marketing (thin edges over :mod:`marketing.store`), explicitly named, on the analytics
Celery app.

Analytics owns the Celery app (:func:`analytics.celery_app.make_celery`) and sits below marketing, so it never
imports this module: the composition roots hand :func:`register` to ``make_celery`` (``keliu.cli``'s
``CELERY_COMPONENTS``), which calls it to add the tasks and their beat entries. The tasks take the analytics tasks'
options (acknowledged late, redelivered when a worker is lost, retried on database errors) and are idempotent.

    marketing.expire_due(now)   issued coupons past their end → expired, in batches of EXPIRE_BATCH
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab

from analytics.tasks import RETRY, engine_of
from marketing.store import coupons

#: coupons expired per transaction: short transactions, so the sweep never holds many row locks at once
EXPIRE_BATCH = 5000


def expire_due(self: Task, now: float | None = None, batch: int = EXPIRE_BATCH) -> int:
    """Expire every issued coupon whose end is at or before ``now`` (epoch seconds; the clock when not given), one
    transaction per batch; returns how many. Running it again expires nothing more."""
    at = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    engine, total = engine_of(self), 0
    while True:
        with engine.begin() as conn:
            n = coupons.expire_due(conn, at, limit=batch)
        total += n
        if n < batch:
            return total


def register(app: Celery) -> dict[str, dict[str, Any]]:
    """Add marketing's tasks to ``app``; returns their beat entries. Coupons end at a local midnight of their
    stores: every 10 minutes (a minute past) writes them down soon after."""
    # shared=False: on this app only (a shared task would join every Celery app the process builds)
    app.task(name="marketing.expire_due", shared=False, **RETRY)(expire_due)
    return {"marketing-expire-due": {"task": "marketing.expire_due", "schedule": crontab(minute="1-59/10")}}
