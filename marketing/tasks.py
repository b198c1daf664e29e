"""The Celery tasks of campaigns (thin edges over marketing.execution), explicitly named, registered on the
analytics app by the composition root (keliu.tasks.make_app) — marketing imports analytics' app, never the
reverse.

    marketing.trigger_login(member, store, ts)         after a login commits (the portal enqueues it): first or
                                                       returning login, decided from the member's logins
    marketing.trigger_presence(member, store, dwell_s, ts)
                                                       a member's visit started (dwell 0) or lasted dwell_s
    marketing.scan_presence(ts)                        the members whose visits analytics saw in the last 10 minutes
                                                       fire trigger_presence's campaigns (beat, every 5 min, after
                                                       the rollups)
    marketing.beat(ts)                                 every approved lapsed / expiring / scheduled campaign: enroll
                                                       the newly eligible, enqueue their sends (beat, every 5 min)
    marketing.run_campaign(campaign, ts)               one beat campaign now (the admin's "run now", the demo)
    marketing.deliver_<channel>(campaign, member, step, ts)
                                                       one message (splash, sms, wechat, webhook): each channel its
                                                       own task, so each has its own rate limit
    marketing.resume_sends(ts)                         sends left behind by a dead worker or a lost task (beat,
                                                       every minute)
    marketing.expire_due(now)                          issued coupons past their end → expired, in batches of
                                                       EXPIRE_BATCH (beat, every 10 minutes, a minute past)

Every task is acknowledged late and rejected (so redelivered) when its worker is lost; a delivery whose lease is
held by another attempt, or that failed transiently, retries with a countdown. ``ts`` (epoch seconds) is the
trigger's instant (now if omitted); a delivery decides at the time it runs, or at ``ts`` if that is later.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from celery import Celery, Task
from celery.schedules import crontab

from analytics import tasks as analytics_tasks
from marketing import execution
from marketing.core.contact import CHANNELS
from marketing.store import coupons
from marketing.store.segments import LOGINS

#: the composition root's factory of the execution's dependencies, called once per worker process
DepsFactory = Callable[[Celery], execution.Deps]

_DEPS: dict[int, execution.Deps] = {}
#: analytics' task options (acknowledged late, redelivered when a worker is lost, retried on database errors with a
#: backoff), with more retries: a send waits out a dead worker's lease
RETRY: dict[str, Any] = {**analytics_tasks.RETRY, "autoretry_for": (sa.exc.OperationalError, sa.exc.InterfaceError),
                         "max_retries": 20}
#: coupons expired per transaction: short transactions, so the sweep never holds many row locks at once
EXPIRE_BATCH = 5000


def deps_of(task: Task) -> execution.Deps:
    key = id(task.app)
    if key not in _DEPS:
        factory: DepsFactory | None = getattr(task.app, "keliu_marketing_deps", None)
        assert factory is not None, "marketing tasks run on an app set up by marketing.tasks.register"
        _DEPS[key] = factory(task.app)
    return _DEPS[key]


def _at(ts: float | None) -> datetime:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC)


def _enqueue(task: Task, sends: list[tuple[int, str, int]], member_id: int, ts: float | None) -> int:
    for campaign_id, channel, step in sends:
        task.app.tasks[f"marketing.deliver_{channel}"].delay(campaign_id, member_id, step, ts)
    return len(sends)


def trigger_login(self: Task, member_id: int, store_id: str, ts: float | None = None) -> int:
    deps = deps_of(self)
    with deps.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(LOGINS).where(LOGINS.c.member_id == member_id)
                         ).scalar() or 0
    sends = execution.login_sends(deps.engine, member_id, store_id, n <= 1, _at(ts))
    return _enqueue(self, sends, member_id, ts)


def trigger_presence(self: Task, member_id: int, store_id: str, dwell_s: float = 0.0,
                     ts: float | None = None) -> int:
    deps = deps_of(self)
    return _enqueue(self, execution.presence_sends(deps.engine, member_id, store_id, dwell_s, _at(ts)), member_id, ts)


def scan_presence(self: Task, ts: float | None = None) -> int:
    deps = deps_of(self)
    now = _at(ts)
    n = 0
    for member_id, store_id, dwell_s in execution.presence_seen(deps.engine, now - timedelta(minutes=10)):
        n += _enqueue(self, execution.presence_sends(deps.engine, member_id, store_id, dwell_s, now), member_id, ts)
    return n


def run_campaign(self: Task, campaign_id: int, ts: float | None = None) -> int:
    deps = deps_of(self)
    with deps.engine.connect() as conn:
        camp = execution.load(conn, campaign_id)
    if camp is None:
        return 0
    due = execution.campaign_sends_due(deps.engine, campaign_id, _at(ts), deps.policy,
                                       execution.provider_hours(deps, camp.channel))
    # claimed and decided in batches (one transaction each: the contact policy's caps, cooldown and consents at
    # once); only what may go is queued for its channel, at the instant deliver would decide it
    claimed = execution.claim(deps, campaign_id, due, _at(max(ts or 0.0, time.time())))
    deliver = self.app.tasks[f"marketing.deliver_{camp.channel}"]
    for (member_id, step), r in zip(due, claimed, strict=True):
        if r.status in ("reserved", "duplicate"):
            deliver.delay(campaign_id, member_id, step, ts)
    return len(due)


def beat(self: Task, ts: float | None = None) -> int:
    """Fan out one ``marketing.run_campaign`` per approved beat campaign; returns how many."""
    ids = execution.beat_campaigns(deps_of(self).engine)
    for campaign_id in ids:
        self.app.tasks["marketing.run_campaign"].delay(campaign_id, ts)
    return len(ids)


def resume_sends(self: Task, ts: float | None = None) -> int:
    deps = deps_of(self)
    stale = execution.stale_sends(deps.engine, _at(ts), deps.lease)
    for campaign_id, member_id, step, channel in stale:
        self.app.tasks[f"marketing.deliver_{channel}"].delay(campaign_id, member_id, step, ts)
    return len(stale)


def deliver(self: Task, campaign_id: int, member_id: int, step: int, ts: float | None = None) -> dict[str, Any]:
    deps = deps_of(self)
    # decided when it runs, never before its trigger's instant: a retry after a held lease must see the lease run out
    r = execution.deliver(deps, campaign_id, member_id, step, _at(max(ts or 0.0, time.time())))
    # (in-process, eager, a retry would run again at once, ignoring the countdown: the send stays recorded as
    # ``reserved``/``sending`` and the beat's resume_sends takes it up)
    if r.status in ("in_flight", "retry") and r.retry_in is not None and not self.request.is_eager:
        # another attempt holds the lease (this task came back after its worker died), or the channel failed for
        # now: try again when the lease runs out / after the backoff; the lease is taken over then, never shared
        raise self.retry(countdown=r.retry_in, max_retries=None if r.status == "in_flight" else 20)
    return {"status": r.status, "reason": r.reason}


def expire_due(self: Task, now: float | None = None, batch: int = EXPIRE_BATCH) -> int:
    """Expire every issued coupon whose end is at or before ``now`` (epoch seconds; the clock when not given), one
    transaction per batch; returns how many. Running it again expires nothing more."""
    at = _at(now)
    engine, total = analytics_tasks.engine_of(self), 0
    while True:
        with engine.begin() as conn:
            n = coupons.expire_due(conn, at, limit=batch)
        total += n
        if n < batch:
            return total


def register(app: Celery, deps: DepsFactory, rate_limits: dict[str, str] | None = None) -> None:
    """Register the tasks on ``app`` under their explicit names, with ``deps`` to build their dependencies, the
    per-channel rate limits (Celery's token bucket, per worker process) and the beat entries."""
    app.keliu_marketing_deps = deps
    limits = rate_limits or {}
    # not shared (Celery's default would put them on every app made afterwards: analytics' own app and the
    # sensor's, which have no dependencies for them)
    for fn in (trigger_login, trigger_presence, scan_presence, beat, run_campaign, resume_sends):
        app.task(name=f"marketing.{fn.__name__}", shared=False, **RETRY)(fn)
    # analytics' options as they are (a coupon sweep has no lease to wait out)
    app.task(name="marketing.expire_due", shared=False, **analytics_tasks.RETRY)(expire_due)
    for channel in CHANNELS:
        app.task(name=f"marketing.deliver_{channel}", rate_limit=limits.get(channel), shared=False, **RETRY)(deliver)
    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        "marketing-beat": {"task": "marketing.beat", "schedule": crontab(minute="*/5")},
        "marketing-presence": {"task": "marketing.scan_presence", "schedule": crontab(minute="3-59/5")},
        "marketing-resume-sends": {"task": "marketing.resume_sends", "schedule": crontab(minute="*")},
        # coupons end at a local midnight of their stores: every 10 minutes (a minute past) writes them down soon after
        "marketing-expire-due": {"task": "marketing.expire_due", "schedule": crontab(minute="1-59/10")},
    }


def login_enqueuer(app: Celery) -> Callable[[int, str, datetime], None]:
    """What the portal calls after a login committed: enqueue ``marketing.trigger_login``."""
    task = app.tasks["marketing.trigger_login"]

    def on_login(member_id: int, store_id: str, now: datetime) -> None:
        task.delay(member_id, store_id, now.timestamp())

    return on_login
