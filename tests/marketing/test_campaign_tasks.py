"""marketing's tasks on the appliance's Celery app (keliu.tasks): explicit names, acknowledged late, per-channel
rate limits from ``[marketing]``, beat entries; analytics' own app (analytics alone) has none of them."""
from __future__ import annotations

from analytics.celery_app import make_celery
from keliu import config
from keliu.tasks import make_app


def test_the_appliance_app_has_marketings_tasks_with_their_rate_limits() -> None:
    cfg = config.load(env={"KELIU_MARKETING_RATE_SMS": "5/s", "KELIU_MARKETING_RATE_WEBHOOK": "600/m"})
    app = make_app(cfg)
    names = {n for n in app.tasks if n.startswith("marketing.")}
    assert names == {"marketing.trigger_login", "marketing.trigger_presence", "marketing.scan_presence",
                     "marketing.beat", "marketing.run_campaign", "marketing.resume_sends",
                     "marketing.deliver_splash", "marketing.deliver_sms", "marketing.deliver_wechat",
                     "marketing.deliver_webhook"}
    limits = {c: app.tasks[f"marketing.deliver_{c}"].rate_limit for c in ("splash", "sms", "wechat", "webhook")}
    assert limits == {"splash": None, "sms": "5/s", "wechat": "20/s", "webhook": "600/m"}
    assert all(app.tasks[n].acks_late and app.tasks[n].reject_on_worker_lost for n in names)
    beat = {e["task"]: e for e in app.conf.beat_schedule.values()}
    assert {"marketing.beat", "marketing.scan_presence", "marketing.resume_sends", "analytics.dispatch"} <= set(beat)
    assert not any(n.startswith("marketing.") for n in make_celery(cfg).tasks)


def test_a_bad_rate_names_the_key() -> None:
    import pytest

    from keliu.errors import ConfigError

    with pytest.raises(ConfigError, match="rate_sms"):
        config.load(env={"KELIU_MARKETING_RATE_SMS": "fast"})
    with pytest.raises(ConfigError, match="sms_templates"):
        config.load(env={"KELIU_MARKETING_SMS_TEMPLATES": "member_benefit"})
