"""The campaign editor and the campaign report in Debian's chromium (headless): a store manager opens the campaign
pages from the console's navigation, is refused with every problem shown beside its field (no consent basis, an SMS
category Tencent forbids, no refusal suffix) and the form keeps what was typed, fixes it, creates and approves the
campaign, opens its report (tables with intervals, the CSV download, the sample-size helper). Every campaign page
fits a phone's and a desktop's width and shows no untranslated key, in zh-CN and English."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.accounts import users
from keliu.gate import MemoryGate
from marketing.store.campaigns import campaign_members, campaign_sends
from portal.edges.sms_backends import ConsoleSms
from portal.store.members import upsert_member
from tests.conftest import ROOT, launch_chromium, serve_wsgi
from tests.portal.conftest import FakeClock, make_app

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# screenshots: into docs/screenshots/ only when asked (KELIU_SCREENSHOTS=1), so that a test run leaves the tree clean
SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("KELIU_SCREENSHOTS") == "1"
         else Path(tempfile.mkdtemp(prefix="keliu-shots-")))
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
FITS = """() => {
    const vw = document.documentElement.clientWidth, out = [];
    for (const e of document.querySelectorAll('body *')) {
        const r = e.getBoundingClientRect();
        if (r.width > 0 && r.height > 0 && (r.right > vw + 1 || r.left < -1)) out.push(e.tagName + '#' + e.id);
    }
    for (const e of document.querySelectorAll('.card, main, nav'))
        if (e.scrollWidth > e.clientWidth + 1) out.push('overflows ' + e.tagName + '#' + e.id);
    return out;
}"""


@pytest.fixture
def served(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
           neighbours: dict[str, str]) -> Iterator[tuple[Flask, str]]:
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours,
                   stores=[{"id": "s1", "mall": "m1", "name": "一店"}], malls=[{"id": "m1", "name": "商场"}],
                   portal={"store": "s1"})
    users.create_user(app.extensions["keliu"].engine, "boss1", "pw-boss1-long", "store", store_id="s1")
    with serve_wsgi(app) as url:
        yield app, url


def enroll(app: Flask, campaign_id: int) -> None:
    """200 members, 40 held out; more of the treated came back (a login in the window) than of the held out."""
    svc = app.extensions["keliu"]
    now = svc.now()
    with svc.engine.begin() as conn:
        for i in range(200):
            m = upsert_member(conn, store_id="s1", now=now - timedelta(days=40), phone_e164=f"+8613800{i:06d}")
            arm = "control" if i < 40 else "treatment"
            conn.execute(sa.insert(campaign_members).values(campaign_id=campaign_id, member_id=m, arm=arm,
                                                            eligible_at=now))
            conn.execute(sa.insert(campaign_sends).values(campaign_id=campaign_id, step=0, member_id=m,
                                                          channel="sms", status="control" if arm == "control"
                                                          else "sent", ts=now))
            if (arm == "treatment" and i % 2) or (arm == "control" and i % 5 == 0):
                conn.execute(sa.text("INSERT INTO logins (ts, store_id, member_id, device_id, method, ip) "
                                     "VALUES (:t, 's1', :m, 'd', 'sms', '10.0.0.2')"),
                             {"t": now + timedelta(days=1), "m": m})


def fits(page: Any, where: str) -> None:
    assert page.evaluate(FITS) == [], where
    text = page.inner_text("body")
    assert "⟦" not in text and "err_" not in text and "trigger_" not in text, where


def test_editor_refuses_then_creates_and_the_report_answers(served: tuple[Flask, str]) -> None:
    app, base = served
    with launch_chromium() as browser:
        ctx = browser.new_context(viewport=VIEWPORTS["desktop"], locale="zh-CN", accept_downloads=True)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(base + "/admin/login")
        page.fill("#name", "boss1")
        page.fill("#password", "pw-boss1-long")
        with page.expect_navigation():
            page.click("button[type=submit]")
        with page.expect_navigation():
            page.click("#nav-campaigns")
        assert page.inner_text("h1") == "营销活动" and page.is_visible("#no-campaigns")
        with page.expect_navigation():
            page.click("#new-campaign")
        fits(page, "editor")
        page.fill("#f-name", "沉睡会员唤醒")
        page.select_option("#f-trigger", "lapsed")
        page.fill("#f-lapsed_days", "30")
        page.select_option("#f-channel", "sms")
        page.select_option("#f-category", "coupon")
        page.select_option("#f-provider", "tencent")
        page.fill("#f-message", "满100减20优惠券已到账")
        page.fill("#f-template_id", "1234567")
        with page.expect_navigation():
            page.click("#save")
        problems = page.inner_text("#problems")
        assert "活动必须有同意依据" in problems and "不允许通过短信发送" in problems and "拒收请回复R" in problems
        assert page.locator('.err[data-field="consents"]').count() == 1
        assert page.input_value("#f-name") == "沉睡会员唤醒"  # nothing typed is lost
        assert page.input_value("#f-message") == "满100减20优惠券已到账"
        fits(page, "editor with problems")
        page.screenshot(path=str(SHOTS / "console-campaign-editor-zh.png"), full_page=True)
        page.select_option("#f-category", "member_benefit")
        page.fill("#f-message", "会员日积分翻倍，拒收请回复R")
        page.check("#consent-sms_marketing")
        with page.expect_navigation():
            page.click("#save")
        assert page.inner_text("#done") == "活动已创建（草稿）。"
        row = page.locator("#campaigns tbody tr").first
        cid = int(str(row.get_attribute("id")).split("-")[1])
        assert row.get_attribute("data-status") == "draft"
        with page.expect_navigation():
            page.click(f"#approve-{cid}")
        assert page.get_attribute(f"#campaign-{cid}", "data-status") == "approved"
        assert page.inner_text(f"#campaign-{cid} .status") == "已批准"

        enroll(app, cid)
        with page.expect_navigation():
            page.click(f"#report-{cid}")
        assert page.inner_text("#title") == "活动报告 · 沉睡会员唤醒"
        lift_row = page.locator("#tab-lift tbody tr").first
        cells = lift_row.locator("td")
        assert cells.nth(1).inner_text() == "50.0%" and cells.nth(2).inner_text() == "20.0%"
        low, high = float(str(cells.nth(3).get_attribute("data-low"))), float(str(cells.nth(3).get_attribute(
            "data-high")))
        assert low < 0.3 < high and low > 0  # the difference's interval excludes 0
        assert page.locator("#tab-incremental th").all_inner_texts() == ["指标", "增量 [95% CI]", "归因（最后触达）"]
        fits(page, "report")
        page.screenshot(path=str(SHOTS / "console-campaign-report-zh.png"), full_page=True)
        with page.expect_download() as got:
            page.click("#csv")
        csv_text = Path(got.value.path()).read_text(encoding="utf-8-sig")
        assert "符合条件,200" in csv_text and "对照组（不发送）,40" in csv_text
        page.fill("#s-baseline", "10")
        page.fill("#s-lift", "20")
        page.fill("#s-control", "10")
        with page.expect_navigation():
            page.click("#sample-compute")
        assert page.get_attribute("#sample-answer", "data-n") == "19963"
        assert errors == []

        # every campaign page at both sizes, in both languages
        for size, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            for lang in ("zh-CN", "en"):
                for path in ("/admin/campaigns", "/admin/campaigns/new", f"/admin/campaigns/{cid}/report"):
                    page.goto(f"{base}{path}?lang={lang}")
                    assert page.evaluate("document.documentElement.lang") == lang
                    fits(page, f"{path} {lang} {size}")
        ctx.close()
