"""Every page of the appliance in Debian's chromium (headless), at phone size (390×844) and desktop size (1280×800),
in zh-CN and English: the shopper's splash, status, terms and privacy pages, the console's login, password, online
clients, splash editor and its preview, user pages, members, a member and the audit trail, the counter and the
staff card (an admin's and a staff member's), the dashboard's store, mall and operator views, its marketing sections
and its error page; and the member's own pages (/member, /member/data and what they link to).

Each page must fit its width (the document does not scroll sideways and no element reaches past the viewport),
show no untranslated key (a raw catalog key such as ``nav_users``, or the ``⟦key⟧`` mark of a missing one), carry
the language asked for, and load nothing that answers 404 (the favicon included). A dashboard fed an API answer
full of nulls must say "no data" / 无数据 wherever a figure is missing, never 0. With ``KELIU_SCREENSHOTS=1`` the
console's screenshots go to docs/screenshots/.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from flask import Flask

from dashboards.builtin import i18n as dash_i18n
from keliu.accounts import i18n as console
from portal.core import i18n as portal_i18n
from tests.conftest import ROOT, launch_chromium, serve_wsgi

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("KELIU_SCREENSHOTS") == "1"
         else Path(tempfile.mkdtemp(prefix="keliu-shots-")))
PASSWORD = "correct horse battery staple"
#: the screenshots of README.md and docs/PORTAL.md: (page, viewport, language) → file
SCREENSHOTS = {
    ("splash", "phone", "zh-CN"): "portal-splash-zh.png",
    ("splash", "phone", "en"): "portal-splash-en.png",
    ("terms", "phone", "zh-CN"): "portal-terms-zh.png",
    ("admin", "desktop", "zh-CN"): "console-admin-zh.png",
    ("admin", "phone", "zh-CN"): "console-admin-phone-zh.png",
    ("splash-editor", "desktop", "zh-CN"): "console-splash-editor-zh.png",
    ("splash-editor", "desktop", "en"): "console-splash-editor-en.png",
    ("users", "desktop", "zh-CN"): "console-users-zh.png",
    ("dashboard-store", "phone", "zh-CN"): "dashboard-store-phone-zh.png",
    ("dashboard-mall", "desktop", "zh-CN"): "dashboard-mall-zh.png",
}
PHONE_IP = "10.77.0.20"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
LANGS = ("zh-CN", "en")

#: (name, path, what to wait for): every page a user can reach
PAGES = [
    ("splash", "/", "#login"),
    ("status", "/status", "body"),
    ("terms", "/terms", "#terms-text"),
    ("privacy", "/privacy", "body"),
    ("admin", "/admin", "#clients"),
    ("splash-list", "/admin/splash", "#splash-stores"),
    ("splash-editor", "/admin/splash/s1", "#splash-form"),
    ("splash-preview", "/admin/splash/s1/preview", "#login"),
    ("users", "/admin/users", "#users"),
    ("password", "/admin/password", "#password-form"),
    ("dashboard-store", "/dashboard/store/s1?start=2026-01-05", "body[data-ready='1']"),
    ("dashboard-mall", "/dashboard/mall/m1?start=2026-01-05", "body[data-ready='1']"),
    ("dashboard-operator", "/dashboard/operator?start=2026-01-05", "body[data-ready='1']"),
    ("dashboard-empty", "/dashboard/store/s3", "body[data-ready='1']"),
    ("members", "/admin/members", "#members"),
    ("member", "/admin/members/{member}", "#export"),
    ("audit", "/admin/audit", "#audit"),
    ("counter", "/counter", "#scan-form"),
    ("counter-card", "/counter/card", "#staff-qr"),
    ("marketing-store", "/dashboard/store/s1/marketing?start=2026-01-05", "#marketing"),
    ("marketing-mall", "/dashboard/mall/m1/marketing?start=2026-01-05", "#marketing"),
]
#: the member's own pages (a shopper's, not the console's): (name, path, what to wait for, whether it follows
#: ``?lang=``: the member card /member shows both languages at once and says so in neither)
MEMBER_PAGES = [
    ("member-home", "/member", "#member-phone", False),
    ("member-data", "/member/data", "body", True),
    ("member-data-all", "/member/data/all", "body", True),
    ("member-phone", "/member/data/phone", "body", True),
]
#: a shop assistant of s1: the counter is all of the console they see
STAFF = "clerk-s1"


def raw_keys() -> re.Pattern[str]:
    """Any catalog key that reads like a key (``nav_users``, ``median_dwell_s``), as a whole word."""
    keys = set()
    for catalog in (console.CATALOG, portal_i18n.CATALOG, dash_i18n.CATALOG):
        for lang in catalog.values():
            keys |= {k for k in lang if "_" in k or "." in k}
    return re.compile(r"(?<![\w/])(" + "|".join(sorted(map(re.escape, keys), key=len, reverse=True)) + r")(?![\w/])")


RAW = raw_keys()
FITS = """() => {
    const vw = document.documentElement.clientWidth, out = [];
    for (const e of document.querySelectorAll('body *')) {
        const r = e.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        if (r.right > vw + 1 || r.left < -1)
            out.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
    // nothing overflows its card either (a table wider than its box, a chart wider than its panel)
    for (const e of document.querySelectorAll('.card, .table, .chart, .kpi, main, header, nav')) {
        if (e.scrollWidth > e.clientWidth + 1)
            out.push(`overflows ${e.tagName.toLowerCase()}#${e.id}.${e.className} ${e.scrollWidth}>${e.clientWidth}`);
    }
    // buttons keep their words on one line (查看 must not wrap)
    for (const b of document.querySelectorAll('button')) {
        const range = document.createRange();
        range.selectNodeContents(b);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) out.push(`wrapped button ${b.innerText.trim()}`);
    }
    const se = document.scrollingElement;
    return {scroll: se.scrollWidth, client: se.clientWidth, wide: out.slice(0, 8)};
}"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    from keliu.accounts.users import create_user
    from keliu.gate import MemoryGate
    from portal.app import create_app, start_up
    from portal.edges.sms_backends import ConsoleSms
    from tests.dashboards.app import USERS, keliu_config
    from tests.dashboards.realdata import NOW, seed
    from tests.portal.conftest import Phone

    tmp = tmp_path_factory.mktemp("console")
    sms = ConsoleSms(io.StringIO())
    app = create_app({"KELIU": keliu_config(tmp), "TESTING": True, "CLOCK": lambda: NOW,
                      "GATE": MemoryGate(lambda: NOW), "SMS": sms,
                      "NEIGHBOURS": {PHONE_IP: "3c:22:fb:00:00:01"}.get})
    start_up(app)
    svc = app.extensions["keliu"]
    for name, (role, mall, store) in USERS.items():
        create_user(svc.engine, name, PASSWORD, role, mall_id=mall, store_id=store)  # type: ignore[arg-type]
    create_user(svc.engine, STAFF, PASSWORD, "staff", mall_id="m1", store_id="s1")
    seed(svc.engine, svc.cfg)
    # one shopper online, so that the admin's table has a row (with its long device id) to lay out
    assert Phone(app, PHONE_IP).login(sms, "13812345678", marketing=True).status_code in (200, 302, 303)
    yield app
    svc.engine.dispose()


@pytest.fixture(scope="module")
def base(app: Flask) -> Iterator[str]:
    with serve_wsgi(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch_chromium() as b:
        yield b


def logged_in(browser: Any, base: str, viewport: str, user: str = "admin") -> tuple[Any, list[str]]:
    ctx = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status == 404 else None)
    page.goto(base + "/admin/login")
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page, problems


def with_lang(path: str, lang: str) -> str:
    return path + ("&" if "?" in path else "?") + "lang=" + lang


def check_page(page: Any, problems: list[str], name: str, lang: str, viewport: str, *, html_lang: bool = True) -> None:
    where = f"{name} {lang} {viewport}"
    fit = page.evaluate(FITS)
    assert fit["scroll"] <= fit["client"], (where, fit)
    assert fit["wide"] == [], (where, fit)
    text = page.inner_text("body")
    assert "⟦" not in text, where
    raw = RAW.search(text)
    assert raw is None, (where, raw.group(0) if raw else None)
    if html_lang:
        assert page.evaluate("document.documentElement.lang") == lang, where
    assert problems == [], (where, problems)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_fits_and_is_translated(browser: Any, base: str, member: int, viewport: str) -> None:
    page, problems = logged_in(browser, base, viewport)
    for lang in LANGS:
        for name, path, ready in PAGES:
            resp = page.goto(base + with_lang(path.format(member=member), lang))
            assert resp is not None and resp.status == 200, (name, lang, resp.status if resp else None)
            page.wait_for_selector(ready, timeout=20_000)
            check_page(page, problems, name, lang, viewport)
            shot = SCREENSHOTS.get((name, viewport, lang))
            if shot:
                page.screenshot(path=str(SHOTS / shot), full_page=viewport == "phone")
    # the two views of the console link to each other, keeping the language
    page.goto(base + "/admin?lang=en")
    assert page.get_attribute("#nav-dashboard", "href") == "/dashboard?lang=en"
    page.click("#nav-dashboard")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#nav-online") == "Online" and page.get_attribute("#nav-online", "href") == "/admin?lang=en"
    page.click("#nav-online")
    page.wait_for_selector("#clients")
    assert "/admin" in page.url
    page.context.close()


@pytest.fixture(scope="module")
def member(app: Flask) -> int:
    """The member the shopper online became."""
    from portal.store import rights

    with app.extensions["keliu"].engine.connect() as conn:
        mid = rights.find(conn, "+8613812345678")
    assert mid is not None
    return mid


def nav_links(page: Any) -> list[str]:
    return [str(i) for i in page.locator("#console-nav .kn-links a").evaluate_all("(as) => as.map(a => a.id)")]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_staff_see_the_counter_in_the_console(browser: Any, base: str, viewport: str) -> None:
    """A shop assistant's counter and staff card carry the console's navigation: the counter and the password, no
    more; every other console page answers them 403."""
    page, problems = logged_in(browser, base, viewport, user=STAFF)
    assert "/counter" in page.url, page.url
    for lang in LANGS:
        for name, path, ready in [("counter", "/counter", "#scan-form"), ("counter-card", "/counter/card", "#staff-qr")]:
            resp = page.goto(base + with_lang(path, lang))
            assert resp is not None and resp.status == 200, (name, lang, resp.status if resp else None)
            page.wait_for_selector(ready)
            assert nav_links(page) == ["nav-counter", "nav-password"], (name, lang)
            assert page.inner_text("#nav-counter") == console.t(lang, "nav_counter")
            assert page.get_attribute("#nav-counter", "href") == f"/counter?lang={lang}"
            check_page(page, problems, f"staff-{name}", lang, viewport)
    for path in ("/admin/members", "/admin/audit", "/admin", "/dashboard/store/s1/marketing"):
        resp = page.goto(base + path)
        assert resp is not None and resp.status == 403, path
    page.context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_member_pages_fit_and_are_translated(browser: Any, base: str, app: Flask, member: int,
                                             viewport: str) -> None:
    """The member's own pages, with the member logged in on this browser (the session cookie the SMS login sets)."""
    from datetime import UTC, datetime

    from tests.dashboards.realdata import NOW

    signer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookie = signer.dumps({"member_id": member, "member_auth_at": datetime.fromtimestamp(NOW, UTC).isoformat()})
    for lang in LANGS:
        ctx = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
        ctx.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": base}])
        page = ctx.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc, problems=problems: problems.append(f"script error: {exc}"))
        page.on("response", lambda r, problems=problems: problems.append(f"{r.status} {r.url}")
                if r.status == 404 else None)
        for name, path, ready, follows_lang in MEMBER_PAGES:
            resp = page.goto(base + with_lang(path, lang))
            assert resp is not None and resp.status == 200, (name, lang, resp.status if resp else None)
            assert urlparse(page.url).path == path.rstrip("/"), (name, page.url)  # not sent to the login
            page.wait_for_selector(ready)
            check_page(page, problems, name, lang, viewport, html_lang=follows_lang)
        ctx.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_login_forbidden_and_forced_password_pages_fit(browser: Any, base: str, app: Flask, viewport: str) -> None:
    from keliu.accounts.users import create_user

    create_user(app.extensions["keliu"].engine, f"new-{viewport}", PASSWORD, "store", mall_id="m1", store_id="s1",
                must_change=True)
    for lang in LANGS:
        ctx = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-US" if lang == "en" else "zh-CN")
        page = ctx.new_page()
        problems: list[str] = []
        page.on("response", lambda r, problems=problems: problems.append(f"{r.status} {r.url}")
                if r.status == 404 else None)
        page.goto(base + with_lang("/admin/login", lang))
        check_page(page, problems, "login", lang, viewport)
        page.fill("#name", "boss-s1")
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "/admin/login" not in page.url, (page.url, page.inner_text("body")[:300])
        r = page.goto(base + with_lang("/dashboard/store/s2", lang))
        assert r is not None and r.status == 403
        assert page.inner_text("#error") == dash_i18n.t(lang, "forbidden")
        check_page(page, problems, "dashboard-403", lang, viewport)
        ctx.clear_cookies()
        page.goto(base + with_lang("/admin/login", lang))
        page.fill("#name", f"new-{viewport}")
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.goto(base + with_lang("/dashboard", lang))
        assert "/admin/password" in page.url and page.inner_text("#forced") == console.t(lang, "password_forced")
        check_page(page, problems, "password-forced", lang, viewport)
        if viewport == "phone" and lang == "zh-CN":
            page.screenshot(path=str(SHOTS / "console-password-forced-zh.png"), full_page=True)
        ctx.close()


def test_a_dashboard_fed_nulls_says_no_data(browser: Any, base: str) -> None:
    """A fixture API answer where every figure is null: cards, tables and charts say no data, never 0."""
    for lang in LANGS:
        page, problems = logged_in(browser, base, "desktop")
        real = page.request.get(base + f"/api/v1/stores/s1/dashboard?start=2026-01-05&lang={lang}").json()
        view = nulled(real, lang)
        page.route("**/api/v1/stores/s1/dashboard?*", fulfil_with(view))
        page.goto(base + f"/dashboard/store/s1?start=2026-01-05&lang={lang}")
        page.wait_for_selector("body[data-ready='1']")
        none = dash_i18n.t(lang, "no_data")
        values = page.locator(".kpi .value").all_inner_texts()
        assert values and all(v == none for v in values), values
        assert all(none in p for p in page.locator(".kpi .prev:not(#connected-detail)").all_inner_texts())
        # the connected shoppers' card: no data, and why (no station list from the AP that day)
        assert page.locator("#connected-detail").inner_text() == dash_i18n.t(lang, "connected_none")
        assert page.locator("#connected-health").count() == 0
        # every chart says no data instead of drawing zeros
        assert page.locator("#charts canvas").count() == 0
        assert page.locator("#charts .chart.nodata .nodata-text").count() == page.locator("#charts .chart").count() > 0
        cells = page.locator("#table-summary tbody td:nth-child(2)").all_inner_texts()
        assert cells and all(c == none for c in cells), cells
        hourly = page.locator("#table-hourly tbody td:nth-child(2)").all_inner_texts()
        assert len(hourly) == 24 and set(hourly) == {none}
        assert "0" not in page.locator("#kpis").inner_text().split()
        check_page(page, problems, "dashboard-nulls", lang, "desktop")
        page.context.close()
    # a mall with an empty transitions table gets a "no data" line
    page, problems = logged_in(browser, base, "phone")
    page.goto(base + "/dashboard/mall/m2?lang=zh-CN")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#table-transitions tbody tr").all_inner_texts() == ["无数据"]
    check_page(page, problems, "dashboard-mall-empty", "zh-CN", "phone")
    page.context.close()


def fulfil_with(view: dict[str, Any]) -> Any:
    def answer(route: Any) -> None:
        route.fulfill(json=view)

    return answer


def nulled(view: dict[str, Any], lang: str) -> dict[str, Any]:
    """The view with every figure null, as the API sends a day without data."""
    view = dict(view)
    view["kpis"] = [{**k, "value": None, "previous": None, "text": "—", "previous_text": "—", "change_text": "—",
                     "band": None, "basis": None, "band_text": ""} for k in view["kpis"]]  # no figure, no band
    view["tables"] = [{**tab, "rows": [[row[0]] + [{"text": "—", "value": None} for _ in row[1:]]
                                       for row in tab["rows"]]} for tab in view["tables"]]
    charts = view["charts"]
    charts["hourly"] = {**charts["hourly"], "visitors": [None] * 24, "passersby": [None] * 24,
                        "visitors_last_week": [None] * 24, "connected": [None] * 24}
    charts["dwell"] = {**charts["dwell"], "current": [None] * len(charts["dwell"]["labels"]),
                       "previous": [None] * len(charts["dwell"]["labels"])}
    charts["loyalty"] = {**charts["loyalty"], "values": [None] * len(charts["loyalty"]["labels"])}
    charts["funnel"] = [{**s, "value": None} for s in charts["funnel"]]
    charts["days"] = {"dates": [], "visitors": [], "passersby": []}
    view["status"] = {**view["status"], "empty": False}
    assert view.get("connected"), "the store view carries the connected shoppers' card"
    view["connected"] = {**view["connected"], "value": None, "previous": None, "text": "—", "previous_text": "—",
                         "change_text": "—", "detail": dash_i18n.t(lang, "connected_none"),
                         "coverage": None, "last_poll": None, "health_text": ""}  # no read recorded either
    return view


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_login_error_fits(browser: Any, base: str, viewport: str) -> None:
    """Last in the module: a failed login slows this address down (the clock stands still here)."""
    for lang in LANGS:
        ctx = browser.new_context(viewport=VIEWPORTS[viewport])
        page = ctx.new_page()
        problems: list[str] = []
        page.goto(base + with_lang("/admin/login", lang))
        page.fill("#name", "boss-s1")
        page.fill("#password", "wrong password")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.inner_text("#error") in (console.t(lang, "err_login"), console.t(lang, "err_too_many"))
        check_page(page, problems, "login-error", lang, viewport)
        ctx.close()
