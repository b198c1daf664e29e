"""The Celery application of analytics, built by :func:`make_celery` (a composition root; no I/O at import).

Without ``analytics.broker_url`` the app runs every task eagerly, in-process (the embedded default and the demo's
``keliu analytics run``). With a broker (Redis or RabbitMQ) N workers share one ``analytics`` queue: a worker takes
one task at a time (prefetch 1) and acknowledges it only when done (``acks_late``), and a task whose worker dies
is redelivered (``task_reject_on_worker_lost``; on Redis after ``visibility_timeout``). That is safe because every
task is idempotent (``analytics.pipeline``). Store tasks carry the store in their arguments, so the stores spread
over the workers as they free up. One beat scheduler runs in the configured time zone (Asia/Shanghai by default).

Components above analytics add their own tasks: the appliance's composition root (:func:`keliu.tasks.make_app`)
passes ``extensions``, each called with the app to register its explicitly named tasks and beat entries
(marketing's campaigns and ``marketing.expire_due``); analytics never imports them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from celery.schedules import crontab

from keliu.config import Config

#: also consumed by workers: Celery's default queue, for senders that do not route (the sensor's sink)
DEFAULT_QUEUE = "celery"

def worker_queues(cfg: Config) -> list[str]:
    return [cfg.analytics.queue, DEFAULT_QUEUE]


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every 5 minutes the stores' rollups, 2 minutes later the malls'; staff detection of the closed day after
    midnight; the retention purge at night. Times are in the app's time zone."""
    return {
        "rollup-stores": {"task": "analytics.dispatch", "schedule": crontab(minute="*/5"), "args": ("stores",)},
        "rollup-malls": {"task": "analytics.dispatch", "schedule": crontab(minute="2-59/5"), "args": ("malls",)},
        "detect-staff": {"task": "analytics.dispatch", "schedule": crontab(hour="0", minute="20"),
                         "args": ("staff",)},
        "purge": {"task": "analytics.purge", "schedule": crontab(hour="3", minute="30")},
        # the access and NAT log (keliu.accesslog): a signed anchor each day, the retention purge each night
        "accesslog-anchor": {"task": "analytics.accesslog_anchor", "schedule": crontab(hour="0", minute="5")},
        "accesslog-purge": {"task": "analytics.accesslog_purge", "schedule": crontab(hour="3", minute="40")},
    }


def make_celery(cfg: Config, extensions: Sequence[Callable[[Celery], None]] = ()) -> Celery:
    """The analytics Celery app for ``cfg``; the tasks of ``analytics.tasks`` are registered on it, then each of
    ``extensions`` is called with the app: a composition root adds the tasks of the layers above analytics that
    way (keliu.tasks adds marketing's), since analytics may not import them."""
    a = cfg.analytics
    app = Celery("keliu-analytics", set_as_current=False)
    eager = a.broker_url is None
    # Redis: an unacknowledged task is redelivered once older than the visibility timeout, found by a periodic
    # sweep (kombu: every interval x throttle seconds, 100 s by default); keep the sweep within the timeout.
    transport = {"visibility_timeout": a.visibility_timeout,
                 "unacked_restore_interval": max(1, min(10, a.visibility_timeout // 2)),
                 "unacked_restore_throttle": 1 if a.visibility_timeout < 300 else 10,
                 # the sweep's lock: a worker killed while holding it (kombu's default: 300 s) would stop every
                 # other worker's redelivery for that long
                 "unacked_mutex_expire": max(1, min(300, a.visibility_timeout))}
    app.conf.update(
        broker_url=a.broker_url or "memory://localhost/",  # a hostname: kombu warns without one
        result_backend=a.result_backend,
        task_always_eager=eager,
        task_eager_propagates=True,
        task_store_eager_result=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=a.queue,
        task_routes={"analytics.*": {"queue": a.queue}, "marketing.*": {"queue": a.queue}},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_extended=True,
        timezone=cfg.timezone,
        enable_utc=True,
        broker_transport_options=transport,
        broker_use_ssl=a.broker_use_ssl() or False,  # TLS to RabbitMQ with the fleet CA's certificates (keliu.tls)
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(),
    )
    app.keliu_config = cfg  # read by the tasks (analytics.tasks.config_of)
    from analytics import tasks

    tasks.register(app)
    for extend in extensions:
        extend(app)
    return app
