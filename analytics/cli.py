"""``keliu analytics``: worker, beat, report and the in-process loop (composition root for its commands).

Every command reads the layered configuration, so ``KELIU_DATABASE_URL`` (and ``KELIU_ANALYTICS_BROKER_URL``,
``KELIU_ANALYTICS_RESULT_BACKEND``, …) apply to all of them.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import click

from keliu.errors import ConfigError

log = logging.getLogger("keliu.analytics")

#: where a composition root (keliu.cli) puts the factory of the whole appliance's Celery app (analytics' tasks and
#: those of the layers above, which analytics may not import); absent, the commands build analytics' own app
CELERY_APP = "keliu.celery_app"


def _make_app(cfg: Any) -> Any:
    ctx = click.get_current_context(silent=True)
    factory = ctx.meta.get(CELERY_APP) if ctx is not None else None
    if factory is not None:
        return factory(cfg)
    from analytics.celery_app import make_celery

    return make_celery(cfg)


def _setup(upgrade: bool = False) -> tuple[Any, Any]:
    from keliu import config, db, tenants

    cfg = config.load()
    engine = db.make_engine(cfg.database_url)
    if upgrade:
        db.upgrade(engine)
        tenants.sync(engine, cfg)
    return cfg, engine


@click.group("analytics")
def analytics() -> None:
    """Celery worker and beat, reports of visits and metrics."""


@analytics.command("worker")
@click.option("--concurrency", "-c", default=1, show_default=True, help="Worker processes.")
@click.option("--hostname", "-n", default=None, help="Node name (default: analytics@<host>).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo", "threads"]))
@click.option("--queues", "-Q", default=None, help="Comma-separated queues (default: analytics.queue and celery).")
def worker(concurrency: int, hostname: str | None, loglevel: str, pool: str, queues: str | None) -> None:
    """A Celery worker on the configured broker (analytics.broker_url); several share the stores."""
    from analytics.celery_app import worker_queues

    cfg, _ = _setup()
    if not cfg.analytics.broker_url:
        raise ConfigError("analytics.broker_url", "a worker needs a broker; without one, use `keliu analytics run`")
    app = _make_app(cfg)
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}", f"--pool={pool}",
            "-Q", queues or ",".join(worker_queues(cfg)), "--without-gossip", "--without-mingle"]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv)


@analytics.command("beat")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """The one beat scheduler (run exactly one): rollups every 5 minutes, staff detection, purge."""
    from celery.apps.beat import Beat

    cfg, _ = _setup()
    if not cfg.analytics.broker_url:
        raise ConfigError("analytics.broker_url", "beat needs a broker; without one, use `keliu analytics run`")
    app = _make_app(cfg)
    schedule = Path(cfg.var_dir) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    Beat(app=app, schedule=str(schedule), loglevel=loglevel).run()


def _table(report: Mapping[str, Any]) -> str:
    lines = []
    for k, v in report.items():
        if isinstance(v, dict):
            v = "  ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list):
            v = " ".join(str(x) for x in v)
        elif isinstance(v, float):
            v = f"{v:.3f}"
        elif v is None:
            v = "—"
        lines.append(f"{k:<18} {v}")
    return "\n".join(lines)


@analytics.command("report")
@click.option("--store", "store_id", default=None, help="Store id (default: [sensor] store, this router's store).")
@click.option("--date", "day", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Store-local day (default: today in the store's time zone).")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="json", show_default=True)
@click.option("--no-refresh", is_flag=True, help="Only read the stored rollups; do not recompute the day first.")
def report(store_id: str | None, day: Any, fmt: str, no_refresh: bool) -> None:
    """A store-day's metrics (null: no sensor data). The day is first recomputed from its stored sightings (when
    it has any)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from analytics import pipeline
    from analytics import report as reports
    from keliu import config

    cfg = config.load()
    store_id = store_id or cfg.sensor.store
    tz = ZoneInfo(cfg.store(store_id).timezone)  # an unknown store is a configuration error (exit 2)
    cfg, engine = _setup(upgrade=True)
    d: date = day.date() if day is not None else datetime.now(tz).date()
    if not no_refresh:
        pipeline.rollup_store(engine, cfg, store_id, d, time.time())
    out = reports.store_day(engine, store_id, d, cfg)
    click.echo(json.dumps(out, ensure_ascii=False) if fmt == "json" else _table(out))


@analytics.command("run")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(min=1), help="Seconds between runs.")
@click.option("--once", is_flag=True, help="Run the pipeline once and exit.")
def run(interval: int, once: bool) -> None:
    """The in-process loop (demo, single box): every INTERVAL seconds close visits and roll up every active store
    and mall on the configured database, running the Celery tasks eagerly, and run the beat tasks the composition
    root added for the other components (marketing's campaigns). Stops cleanly on SIGTERM or SIGINT."""
    from keliu import console

    console.setup("keliu analytics run")
    cfg, _ = _setup(upgrade=True)
    if cfg.analytics.broker_url:
        click.echo("keliu analytics run: tasks run in-process; analytics.broker_url is ignored here", err=True)
    from keliu import config

    cfg = config.load(overrides={"analytics": {"broker_url": None}}) if cfg.analytics.broker_url else cfg
    app = _make_app(cfg)
    # the other components' beat entries (each task takes the instant as its one argument), every interval
    others = sorted({str(e["task"]) for e in app.conf.beat_schedule.values()
                     if not str(e["task"]).startswith("analytics.")})
    stop = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    last_purge = 0.0
    while not stop.is_set():
        now = time.time()
        n = app.tasks["analytics.dispatch"].delay("stores", now).get()
        m = app.tasks["analytics.dispatch"].delay("malls", now).get()
        for name in others:
            app.tasks[name].delay(now).get()
        if now - last_purge > 3600:
            app.tasks["analytics.purge"].delay(now).get()
            last_purge = now
        log.info("%d store-days, %d mall-days rolled up in %.1fs", n, m, time.time() - now)
        if once:
            break
        stop.wait(interval)
    log.info("stopped")
