"""The member card and the counter pages in one language at a time (zh-CN or English), chosen as on the rest of
the portal: ``?lang=`` (remembered in the ``lang`` cookie), else ``Accept-Language``, else zh-CN. Each page in each
language carries no word of the other language's UI: the HTML here, and Debian's chromium at phone size (the text
a person sees) in the browser test at the end. Names (offers, stores, users) and the brand are data, not UI."""
from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from keliu.accounts import i18n as console
from keliu.accounts import users
from keliu.gate import MemoryGate
from marketing.core import card
from marketing.core.offers import OfferSpec
from marketing.store import coupons
from portal.core import card_text
from portal.edges.sms_backends import ConsoleSms
from portal.store.members import upsert_member
from tests.portal.conftest import FakeClock, Phone, csrf_of, make_app

E164 = "+8613812345678"
STORE_NAME = "Demo 广场店"
TITLE = "满100减20"  # an offer's title is the merchant's text, in whatever language they wrote it
#: data and brand that may be in either language on any page (the language switch names the other language)
DATA = (STORE_NAME, TITLE, "客流 keliu", card_text.t("zh-CN", "lang_switch"), card_text.t("en", "lang_switch"))
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def catalog_words(lang: str) -> set[str]:
    """The UI texts of ``lang`` that are not also the other language's (so finding one is a finding), long enough
    not to be part of a name."""
    other = "en" if lang == "zh-CN" else "zh-CN"
    mine = {**console.CATALOG[lang], **card_text.CATALOG[lang]}.values()
    theirs = set({**console.CATALOG[other], **card_text.CATALOG[other]}.values())
    # a formatted text is looked for by its longest fixed part
    parts = (max(re.split(r"\{[a-z_]+\}", w), key=len).strip(" ·:：") for w in mine if w not in theirs)
    return {p for p in parts if len(p) >= (2 if lang == "zh-CN" else 6)}


def foreign_words(text: str, lang: str) -> list[str]:
    """What of ``text`` (a page's visible text) is UI of the language that is not ``lang``."""
    for d in DATA:
        text = text.replace(d, " ")
    other = "en" if lang == "zh-CN" else "zh-CN"
    found = sorted(w for w in catalog_words(other) if w in text)
    if lang == "en":
        found += CJK.findall(text)
    return found


def visible(page: str) -> str:
    """The text of an HTML page a person reads: no markup, scripts or styles; attributes a person sees (the QR
    code's alt text, the button's words in its data-msg-*) kept."""
    seen = " ".join(re.findall(r'(?:alt|placeholder|data-msg-[a-z-]+)="([^"]*)"', page))
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body) + " " + seen)


def test_card_text_catalogs_have_the_same_keys() -> None:
    assert set(card_text.CATALOG["zh-CN"]) == set(card_text.CATALOG["en"])
    assert card_text.t("en", "nope") == "⟦nope⟧"
    assert card_text.reason("en", "expired") == "This coupon has expired"
    assert card_text.reason("zh-CN", "made_up") == "不能核销（made_up）"


def test_the_checker_finds_the_other_language() -> None:
    assert foreign_words("Member card 会员卡", "en") != [] and foreign_words("会员卡 My coupons", "zh-CN") != []
    assert foreign_words(f"Member card · {TITLE} · {STORE_NAME}", "en") == []
    assert foreign_words("会员卡 · 138****5678 · English", "zh-CN") == []


@pytest.fixture
def app(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
        neighbours: dict[str, str]) -> Flask:
    a = make_app(db_url, var_dir, gate, clock, sms, neighbours,
                 stores=[{"id": "demo-store", "mall": "demo-mall", "name": STORE_NAME}])
    svc = a.extensions["keliu"]
    users.create_user(svc.engine, "alice", "pw-alice", "staff", store_id=svc.store_id)
    with svc.engine.begin() as conn:
        member_id = upsert_member(conn, store_id=svc.store_id, now=svc.now(), phone_e164=E164)
        for kind, value in (("amount_off", 2000), ("percent_off", 10), ("gift", 0)):
            offer = coupons.create_offer(conn, OfferSpec(title=TITLE, kind=kind, value=value, stores=(svc.store_id,),
                                                         min_spend_cents=10000, valid_days=7),
                                         store_id=svc.store_id, now=svc.now(), created_by="test")
            coupons.issue_coupon(conn, offer_id=offer, member_id=member_id, store_id=svc.store_id, channel="staff",
                                 now=svc.now())
    a.config["TEST_MEMBER"] = member_id
    return a


def member_phone(app: Flask, sms: ConsoleSms, accept: str | None) -> Phone:
    """A member logged in on /member from a browser that asks for ``accept``."""
    p = Phone(app, "198.51.100.7")
    if accept:
        p.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    token = csrf_of(p.get("/member").get_data(as_text=True))
    assert p.post("/member/code", data={"csrf_token": token, "phone": "13812345678"}).status_code == 200
    r = p.post("/member/login", data={"csrf_token": token, "phone": "13812345678", "code": sms.last[E164]})
    assert r.status_code == 303
    return p


def check(page: Any, lang: str, expect: Iterable[str]) -> str:
    html = page.get_data(as_text=True)
    assert page.headers["Content-Language"] == lang and f'<html lang="{lang}">' in html
    assert "⟦" not in html, "a key without a translation"
    text = visible(html)
    for word in expect:
        assert word in text, (word, text)
    assert foreign_words(text, lang) == [], text
    return html


@pytest.mark.parametrize(("accept", "lang"), [(None, "zh-CN"), ("en-US,en;q=0.9", "en"), ("zh-CN,zh;q=0.9", "zh-CN")])
def test_member_login_page_in_one_language(app: Flask, accept: str | None, lang: str) -> None:
    p = Phone(app, "198.51.100.7")
    headers = {"Accept-Language": accept} if accept else {}
    page = p.get("/member", headers=headers)
    check(page, lang, [card_text.t(lang, "m_heading"), card_text.t(lang, "m_get_code")])
    assert page.headers["Vary"] == "Accept-Language, Cookie"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_member_card_in_one_language(app: Flask, sms: ConsoleSms, lang: str) -> None:
    p = member_phone(app, sms, "en" if lang == "en" else "zh-CN")
    html = check(p.get("/member"), lang, [card_text.t(lang, k) for k in (
        "m_card", "m_coupons", "kind_gift", "state_issued", "m_privacy", "m_c_marketing", "m_logout", "m_qr_note")])
    assert card_text.t(lang, "kind_amount_off", min="100.00", value="20.00") in html
    assert card_text.t(lang, "kind_percent_off", value=10) in html
    # a change of consent answers in the same language
    r = p.post(f"/member/consents?lang={lang}", data={"csrf_token": csrf_of(html), "marketing": "1"})
    check(r, lang, [card_text.t(lang, "m_saved")])


def test_the_switch_is_remembered_and_wins_over_accept_language(app: Flask, sms: ConsoleSms) -> None:
    p = member_phone(app, sms, "zh-CN")
    html = p.get("/member").get_data(as_text=True)
    assert 'id="lang" href="/member?lang=en"' in html
    switched = p.get("/member?lang=en")
    check(switched, "en", ["Member card"])
    assert "lang=en" in switched.headers["Set-Cookie"]
    check(p.get("/member"), "en", ["My coupons"])  # the cookie, over the browser's zh-CN
    check(p.get("/member?lang=zh-CN"), "zh-CN", ["我的券"])
    token = csrf_of(html)
    assert p.post("/member/logout?lang=zh-CN", data={"csrf_token": token}).status_code == 303
    check(p.get("/member"), "zh-CN", ["会员中心"])


def staff(app: Flask, accept: str) -> Any:
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    token = csrf_of(c.get("/admin/login").get_data(as_text=True))
    assert c.post("/admin/login", data={"csrf_token": token, "name": "alice", "password": "pw-alice"}).status_code == 302
    return c


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_counter_in_one_language(app: Flask, lang: str) -> None:
    svc = app.extensions["keliu"]
    c = staff(app, "en-GB" if lang == "en" else "zh-CN")
    page = c.get("/counter")
    html = check(page, lang, [card_text.t(lang, k) for k in ("c_scan", "c_or_type", "c_look_up", "c_my_card")])
    assert f'data-msg-no-camera="{card_text.t(lang, "c_js_no_camera")}"' in html
    code = card.sign(card.card_key(svc.keys.token), "demo-mall", app.config["TEST_MEMBER"], int(svc.clock()),
                     b"n" * 12)
    scanned = c.post("/counter/scan", data={"csrf_token": csrf_of(html), "code": code})
    html = check(scanned, lang, [card_text.t(lang, k) for k in ("c_member", "c_basket_label", "c_redeem",
                                                               "kind_gift")])
    form = re.search(r'name="code" value="([^"]+)"><input type="hidden" name="key" value="([^"]+)"|'
                     r'name="code" value="([^"]+)">\s*<input type="hidden" name="key" value="([^"]+)"', html)
    assert form is not None
    coupon, key = form.group(1) or form.group(3), form.group(2) or form.group(4)
    done = c.post("/counter/redeem", data={"csrf_token": csrf_of(html), "code": coupon, "key": key,
                                           "basket": "150"})
    check(done, lang, [card_text.t(lang, k) for k in ("c_redeemed", "c_discount", "c_to_pay")])
    refused = c.post("/counter/redeem", data={"csrf_token": csrf_of(html), "code": coupon, "key": key + "x",
                                              "basket": "150"})
    assert refused.status_code == 409
    check(refused, lang, [card_text.reason(lang, "already_redeemed")])
    typed = c.post("/counter/scan", data={"csrf_token": csrf_of(html), "code": "not a code"})
    check(typed, lang, [card_text.reason(lang, "invalid_code")])
    check(c.get("/counter/card"), lang, [card_text.t(lang, k) for k in ("c_assistant", "c_card_scan")])


def test_counter_switch_by_parameter_and_cookie(app: Flask) -> None:
    c = staff(app, "zh-CN")
    check(c.get("/counter?lang=en"), "en", ["Look up"])
    check(c.get("/counter"), "en", ["Look up"])
    check(c.get("/counter?lang=zh-CN"), "zh-CN", ["查询"])


# --- in chromium, at phone size ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.browser
def test_pages_read_in_one_language_in_chromium(app: Flask, sms: ConsoleSms) -> None:
    from tests.conftest import launch_chromium, serve_wsgi

    phone_size = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True,
                  "has_touch": True}
    svc = app.extensions["keliu"]
    with serve_wsgi(app) as base, launch_chromium() as browser:
        for lang, locale in (("zh-CN", "zh-CN"), ("en", "en-US")):
            ctx = browser.new_context(locale=locale, **phone_size)
            try:
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(base + "/member")
                shown = page.inner_text("body")
                assert foreign_words(shown, lang) == [] and card_text.t(lang, "m_heading") in shown, shown
                page.fill("#phone", "13812345678")
                page.click("#send-code")
                page.wait_for_selector("#member-sent")
                page.fill("#code", sms.last[E164])
                page.click("#member-login")
                page.wait_for_selector("#member-qr")
                shown = page.inner_text("body")
                assert card_text.t(lang, "m_coupons") in shown and "⟦" not in shown
                assert foreign_words(shown, lang) == [], shown
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                card_code = card.sign(card.card_key(svc.keys.token), "demo-mall", app.config["TEST_MEMBER"],
                                      int(svc.clock()), lang.encode().ljust(12, b"-"))
                # the shop assistant's phone: the counter, after the member's card was scanned
                page.goto(base + "/admin/login")
                page.fill("#name", "alice")
                page.fill("#password", "pw-alice")
                page.click("button[type=submit]")
                page.wait_for_selector("#scan-code")
                page.fill("#scan-code", card_code)
                page.click("#scan-submit")
                page.wait_for_selector("#counter-member")
                shown = page.inner_text("body")
                assert card_text.t(lang, "c_redeem") in shown and "⟦" not in shown
                assert foreign_words(shown, lang) == [], shown
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                assert errors == []
            finally:
                ctx.close()
