"""The member page's separate consents in Debian's chromium (headless) at phone size (390×844): a member ticks
"offers when I am in the store" (presence_offers) and saves, and a presence-triggered campaign that was suppressed
for want of that consent now sends."""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from keliu.gate import MemoryGate
from marketing import execution
from portal.edges.sms_backends import ConsoleSms
from portal.store import rights
from portal.store.marketing_members import PortalMembers
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, require, serve_wsgi
from tests.marketing.campaign_kit import new_campaign
from tests.portal.conftest import FakeClock, Phone, make_app

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def member_cookie(app: Flask, member_id: int, at: datetime) -> str:
    """The member page's login (``session["member_id"]`` and ``member_auth_at``), signed as Flask signs it."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return str(serializer.dumps({"member_id": member_id, "member_auth_at": at.isoformat()}))


def test_granting_presence_consent_on_the_member_page_lets_a_presence_campaign_send(
        sqlite_url: str, var_dir: Path, sms: ConsoleSms) -> None:
    require(os.path.exists(CHROMIUM), f"chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    app = make_app(sqlite_url, var_dir, MemoryGate(), FakeClock(), sms, {"10.77.0.20": "3c:22:fb:00:00:01"})
    Phone(app, "10.77.0.20").login(sms, marketing=True)
    svc = app.extensions["keliu"]
    with svc.engine.connect() as conn:
        mid = rights.find(conn, "+8613812345678")
    assert mid is not None
    now = svc.now()
    cid = new_campaign(svc.engine, now, trigger="dwell", channel="splash", store_id=svc.store_id,
                       params={"dwell_minutes": 10})
    deps = execution.Deps(engine=svc.engine, contacts=PortalMembers(), lease=timedelta(seconds=60))
    tz = next(s.timezone for s in svc.cfg.stores if s.id == svc.store_id)
    before = execution.deliver(deps, cid, mid, execution.day_step(now, tz), now)
    assert (before.status, before.reason) == ("suppressed", "no_consent:presence_offers")

    with serve_wsgi(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
            ctx.add_cookies([{"name": "keliu", "value": member_cookie(app, mid, now), "url": base}])
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
            for lang in ("en", "zh-CN"):
                page.goto(f"{base}/member?lang={lang}")
                assert page.evaluate("document.documentElement.scrollWidth") <= 390, lang
            assert "到店时接收优惠" in page.inner_text("label[for=c-presence_offers]")
            assert page.is_checked("#c-marketing") and not page.is_checked("#c-presence_offers")
            assert not page.is_checked("#c-trade_area")
            page.check("#c-presence_offers")
            page.click("#save-consents")
            page.wait_for_load_state()
            assert "已保存" in page.inner_text("body")
            assert page.is_checked("#c-presence_offers") and not page.is_checked("#c-trade_area")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert errors == []
        finally:
            browser.close()

    later = now + timedelta(days=1)  # the campaign's next local day: a new step
    after = execution.deliver(deps, cid, mid, execution.day_step(later, tz), later)
    assert after.status == "sent", after
