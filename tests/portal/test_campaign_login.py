"""A login fires the marketing login trigger after it committed (the view only enqueues; without a broker the task
runs in-process), and the campaign's message is shown once on the Wi-Fi success page — to a member who consented
to marketing, to no one else."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask

from marketing.store.campaigns import campaign_sends
from portal.edges.sms_backends import ConsoleSms
from tests.marketing.campaign_kit import new_campaign
from tests.portal.conftest import FakeClock, Phone


def test_first_login_shows_the_campaign_message_once(app: Flask, phone: Phone, sms: ConsoleSms,
                                                     clock: FakeClock) -> None:
    engine = app.extensions["keliu"].engine
    now = datetime.fromtimestamp(clock(), UTC)
    first, _again = (new_campaign(engine, now, name=name, trigger=trigger, channel="splash", category="notice",
                                  store_id="demo-store", message={"text": text})
                     for name, trigger, text in (("welcome", "login_first", "首次光临，欢迎！"),
                                                 ("back", "login_return", "欢迎回来")))
    assert phone.login(sms, marketing=True).status_code == 303
    page = phone.get("/status").get_data(as_text=True)
    assert "首次光临，欢迎！" in page and "欢迎回来" not in page
    assert "首次光临，欢迎！" not in phone.get("/status").get_data(as_text=True)  # shown once
    other = Phone(app, "10.77.0.21")
    assert other.login(sms, number="13912345678").status_code == 303  # no marketing consent
    assert "首次光临" not in other.get("/status").get_data(as_text=True)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(campaign_sends.c.campaign_id, campaign_sends.c.status, campaign_sends.c.reason)
                            .order_by(campaign_sends.c.id)).all()
    assert [tuple(r) for r in rows] == [(first, "sent", None), (first, "suppressed", "no_consent:marketing")]
