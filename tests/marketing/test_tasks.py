"""marketing's Celery tasks on the appliance's app (keliu.tasks.make_app, the one composition): the campaign tasks'
explicit names, late acknowledgement, per-channel rate limits from ``[marketing]`` and beat entries (analytics' own
app has none of them); ``marketing.expire_due`` in the beat schedule, run eagerly against SQLite and PostgreSQL with
a moved clock (batched, idempotent, nothing else touched), by a real ``keliu analytics worker`` process on Redis, and
by the demo's in-process loop ``keliu analytics run``. (The campaigns on real workers: test_campaign_celery.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery.schedules import crontab
from sqlalchemy.engine import Engine

from analytics.celery_app import make_celery
from keliu import config
from keliu.tasks import make_app
from marketing.store import coupons as store
from marketing.store.models import coupons
from tests.analytics.servers import celery_worker
from tests.conftest import fresh_postgres
from tests.marketing.conftest import NOW, seed, tcoupon, toffer, tredeem

pytestmark = pytest.mark.integration


def states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(coupons.c.code, coupons.c.state)).tuples().all())


def test_the_beat_schedule_and_the_worker_know_the_task(tmp_path: Path) -> None:
    cfg = config.load(overrides={"database_url": f"sqlite:///{tmp_path / 'k.db'}"}, env={})
    app = make_app(cfg)
    entry = app.conf.beat_schedule["marketing-expire-due"]
    assert entry["task"] == "marketing.expire_due" and entry["task"] in app.tasks
    assert entry["schedule"] == crontab(minute="1-59/10")
    t = app.tasks["marketing.expire_due"]
    assert (t.acks_late, t.reject_on_worker_lost, t.max_retries) == (True, True, 8)
    assert app.amqp.router.route({}, "marketing.expire_due")["queue"].name == cfg.analytics.queue
    # analytics alone (no extension) has neither
    bare = make_celery(cfg)
    assert "marketing.expire_due" not in bare.tasks and "marketing-expire-due" not in bare.conf.beat_schedule


def test_expire_due_with_a_moved_clock(engine: Engine, tmp_path: Path) -> None:
    cfg = config.load(overrides={"database_url": str(engine.url.render_as_string(hide_password=False))}, env={})
    app = make_app(cfg)  # no broker: eager, in this process
    one_day = toffer(engine, valid_days=1, per_member_issue_limit=None, per_member_use_limit=None)
    week = toffer(engine, valid_days=7, per_member_issue_limit=None, per_member_use_limit=None)
    short = [tcoupon(engine, one_day) for _ in range(5)]
    used, voided = tcoupon(engine, one_day), tcoupon(engine, one_day)
    long = tcoupon(engine, week)
    store.redeem(engine, tredeem(used, "k-used"), NOW)
    with engine.begin() as conn:
        assert store.void_coupon(conn, voided, NOW)
    expire = app.tasks["marketing.expire_due"]
    # the one-day coupons end at the next local midnight (Shanghai: 16:00 UTC); a second before, nothing
    end = (NOW.replace(hour=16, minute=0)).timestamp()
    assert expire.delay(end - 1).get() == 0
    assert expire.delay(end, batch=2).get() == 5  # three batches: 2, 2, 1
    got = states(engine)
    assert {got[c] for c in short} == {"expired"}
    assert (got[used], got[voided], got[long]) == ("redeemed", "voided", "issued")
    assert expire.delay(end + 3600, batch=2).get() == 0  # idempotent
    assert states(engine) == got
    assert expire.delay((NOW + timedelta(days=8)).timestamp()).get() == 1
    assert states(engine)[long] == "expired"


def test_a_worker_on_redis_expires_the_coupons(tmp_path: Path, redis_url: str) -> None:
    with fresh_postgres(migrated=True) as url:
        from keliu import db

        engine = db.make_engine(url)
        db.upgrade(engine)
        seed(engine)
        offer = toffer(engine, valid_days=1, per_member_issue_limit=None)
        codes = [tcoupon(engine, offer) for _ in range(3)]
        queue = f"t-{uuid.uuid4().hex[:10]}"
        (tmp_path / "keliu.toml").write_text("")
        env = {"KELIU_DATABASE_URL": url, "KELIU_ANALYTICS_BROKER_URL": redis_url,
               "KELIU_ANALYTICS_RESULT_BACKEND": "db+" + url, "KELIU_ANALYTICS_QUEUE": queue,
               "KELIU_CONFIG": str(tmp_path / "keliu.toml"), "KELIU_VAR_DIR": str(tmp_path / "var")}
        app = make_app(config.load(env=env))
        with celery_worker(env, f"m-{queue}@test", tmp_path / "worker.log", queues=queue):
            later = (NOW + timedelta(days=2)).timestamp()
            assert app.tasks["marketing.expire_due"].delay(later).get(timeout=60) == 3
            assert app.tasks["marketing.expire_due"].delay(later).get(timeout=60) == 0
        assert {states(engine)[c] for c in codes} == {"expired"}
        engine.dispose()


def test_the_in_process_loop_runs_it(tmp_path: Path, seeded_sqlite_template: Path) -> None:
    import shutil

    from keliu import db

    shutil.copy(seeded_sqlite_template, tmp_path / "k.db")
    url = f"sqlite:///{tmp_path / 'k.db'}"
    engine = db.make_engine(url)
    offer = toffer(engine, valid_days=1, per_member_issue_limit=None)
    old = datetime(2020, 1, 1, 10, tzinfo=UTC)  # ended long before any clock this test runs under
    code, live = tcoupon(engine, offer, now=old), tcoupon(engine, offer, now=datetime.now(UTC) + timedelta(hours=1))
    (tmp_path / "keliu.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env.update({"KELIU_DATABASE_URL": url, "KELIU_CONFIG": str(tmp_path / "keliu.toml"),
                "KELIU_VAR_DIR": str(tmp_path / "var")})
    out = subprocess.run([sys.executable, "-m", "keliu.cli", "analytics", "run", "--once"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert (states(engine)[code], states(engine)[live]) == ("expired", "issued")
    engine.dispose()


def test_the_appliance_app_has_marketings_tasks_with_their_rate_limits() -> None:
    cfg = config.load(env={"KELIU_MARKETING_RATE_SMS": "5/s", "KELIU_MARKETING_RATE_WEBHOOK": "600/m"})
    app = make_app(cfg)
    names = {n for n in app.tasks if n.startswith("marketing.")}
    assert names == {"marketing.trigger_login", "marketing.trigger_presence", "marketing.scan_presence",
                     "marketing.beat", "marketing.run_campaign", "marketing.resume_sends",
                     "marketing.deliver_splash", "marketing.deliver_sms", "marketing.deliver_wechat",
                     "marketing.deliver_wechat_card", "marketing.deliver_webhook", "marketing.expire_due"}
    limits = {c: app.tasks[f"marketing.deliver_{c}"].rate_limit
              for c in ("splash", "sms", "wechat", "wechat_card", "webhook")}
    # the member card is the same official account's API: the template messages' rate
    assert limits == {"splash": None, "sms": "5/s", "wechat": "20/s", "wechat_card": "20/s", "webhook": "600/m"}
    assert all(app.tasks[n].acks_late and app.tasks[n].reject_on_worker_lost for n in names)
    beat = {e["task"]: e for e in app.conf.beat_schedule.values()}
    assert {"marketing.beat", "marketing.scan_presence", "marketing.resume_sends", "marketing.expire_due",
            "analytics.dispatch"} <= set(beat)
    assert not any(n.startswith("marketing.") for n in make_celery(cfg).tasks)


def test_a_bad_rate_names_the_key() -> None:
    from keliu.errors import ConfigError

    with pytest.raises(ConfigError, match="rate_sms"):
        config.load(env={"KELIU_MARKETING_RATE_SMS": "fast"})
    with pytest.raises(ConfigError, match="sms_templates"):
        config.load(env={"KELIU_MARKETING_SMS_TEMPLATES": "member_benefit"})
