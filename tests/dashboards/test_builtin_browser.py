"""The built-in dashboard in Debian's chromium (headless), on the real analytics pipeline's numbers.

A store manager and a mall operator log in through the portal's login form; the numbers on screen are checked
against ``analytics.report`` and against the CSV export; screenshots go to docs/screenshots/ with KELIU_SCREENSHOTS=1.
"""
from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from analytics import report
from dashboards.builtin import i18n
from tests.conftest import ROOT, launch_chromium, serve_wsgi
from tests.dashboards.app import PASSWORD, make_app
from tests.dashboards.realdata import DAY, LAST_POLL, NOW, PREVIOUS, seed

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# screenshots: into docs/screenshots/ only when asked (KELIU_SCREENSHOTS=1), so that a test run leaves the tree clean
SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("KELIU_SCREENSHOTS") == "1"
         else Path(tempfile.mkdtemp(prefix="keliu-shots-")))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = make_app(tmp_path_factory.mktemp("browser"), clock=NOW)
    svc = app.extensions["keliu"]
    seed(svc.engine, svc.cfg)
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


def open_as(browser: Any, base: str, user: str, path: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # every Content-Security-Policy violation (a blocked script, style or fetch) is an error too
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => (window.__csp = window.__csp"
                         " || []).push(e.violatedDirective + ' ' + e.blockedURI))")
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(base + path)
    assert "/admin/login" in page.url
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert errors == [] and page.evaluate("window.__csp || []") == []
    # the page ran under the policy (not a copy served without it)
    assert "script-src 'self';" in page.request.get(page.url).headers["content-security-policy"]
    return page


def screen_tables(page: Any) -> list[list[str]]:
    """The tables as shown: title, header, rows (texts as rendered)."""
    return page.evaluate("""() => {
        const out = [];
        for (const t of document.querySelectorAll('#tables .table')) {
            out.push([t.querySelector('h3').textContent]);
            out.push([...t.querySelectorAll('thead th')].map(th => th.textContent));
            for (const tr of t.querySelectorAll('tbody tr')) out.push([...tr.children].map(td => td.textContent));
            out.push([]);
        }
        return out;
    }""")


NO_DATA = {i18n.t("en", "no_data"), i18n.t("zh-CN", "no_data")}


def csv_of(page: Any) -> list[list[str]]:
    href = page.evaluate("document.getElementById('csv').href")  # absolute
    r = page.request.get(href)
    assert r.status == 200
    return list(csv.reader(io.StringIO(r.text().lstrip("\ufeff"))))


def assert_csv_holds_the_screen(screen: list[list[str]], rows: list[list[str]]) -> None:
    """The CSV holds the tables on screen, row for row: the same titles and texts, the numbers plain (a count as
    its digits, a ratio or a duration as its value in its unit, no data as an empty cell) and the headers of
    numeric columns carrying their unit ("Visitors (count)")."""
    assert len(rows) == len(screen)
    header = True
    for shown, got in zip(screen, rows):
        if len(shown) <= 1:  # a table's title, or the blank line after it
            assert got == shown
            header = len(shown) == 1
            continue
        assert len(got) == len(shown)
        for s, c in zip(shown, got):
            if header:
                assert c == s or c.startswith(s + " ("), (s, c)
            elif c != s and not c.startswith(s + " ("):  # (a summary row's name carries its metric's unit)
                if c == "":
                    assert s in NO_DATA or s == "—", (s, c)  # no data (or no change to show) on screen too
                else:
                    value = float(c)  # a plain number
                    assert any(ch.isdigit() for ch in s), (s, c)
                    if "." not in c and s.replace(",", "").isdigit():
                        assert int(s.replace(",", "")) == value, (s, c)
        header = False


def kpi(page: Any, key: str) -> str:
    return str(page.inner_text(f".kpi[data-key={key}] .value"))


def likely(block: Any, key: str = "visitors") -> str:
    """The band of a report block's count as the page writes it (widened to whole numbers)."""
    lo, hi = block["uncertainty"]["bands"][key]
    return f"likely {math.floor(lo)}–{math.ceil(hi)}"


def assert_band(page: Any, key: str, text: str) -> None:
    """The card of ``key`` shows its calibrated band and names its basis (the linked devices)."""
    card = page.locator(f".kpi[data-key={key}]")
    assert (card.locator(".band").inner_text(), card.get_attribute("data-basis")) == (text, "linked_devices")


def test_store_manager_sees_the_analytics_numbers(browser: Any, base: str, app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    cur, prev = report.store_range(engine, "s1", DAY, DAY), report.store_range(engine, "s1", PREVIOUS, PREVIOUS)
    page = open_as(browser, base, "boss-s1", "/dashboard?lang=en")
    assert page.url.startswith(base + "/dashboard/store/s1")
    assert page.inner_text("#title") == "星巴克"
    assert kpi(page, "visitors") == str(cur["visitors"]) == "3"
    assert kpi(page, "passersby") == str(cur["passersby"]) == "2"
    assert kpi(page, "capture_rate") == i18n.percent(cur["capture_rate"]) == "60.0%"
    assert kpi(page, "median_dwell_s") == i18n.duration("en", cur["median_dwell_s"]) == "26 min"  # 25 min edge-corrected
    assert kpi(page, "repeat_visitors") == str(cur["repeat_visitors"])
    prev_text = page.inner_text(".kpi[data-key=visitors] .prev")
    assert prev_text == f"Same weekday last week: {prev['visitors']} (+200.0%)"
    assert "2026-01-05" in page.inner_text("#compare") and "2025-12-29" in page.inner_text("#compare")
    # connected shoppers beside the estimates: the AP's stations, exact (w1 30 min; w2's 3 min is no visit)
    svc = app.extensions["keliu"]
    conn_now = report.store_range(engine, "s1", DAY, DAY, svc.cfg)["connected"]
    assert (conn_now["visitors"], conn_now["median_dwell_s"], conn_now["basis"]) == (1, 1800.0, "connected_stations")
    card = page.locator(".kpi[data-key=connected]")
    assert card.get_attribute("data-basis") == "connected_stations"
    assert (card.locator(".label").inner_text(), kpi(page, "connected")) == ("Connected shoppers (exact)", "1")
    assert page.inner_text("#connected-detail") == "on the guest Wi-Fi · median dwell 30 min · 1 visits"
    # the AP's station list read in 60 of the 72 opening slots up to its last read, at 15:59:50 (the clock: 18:00)
    assert page.inner_text("#connected-health") == (
        "station list read in 83.3% of the opening hours: at least this many · "
        f"station list last read {i18n.duration('en', NOW - LAST_POLL)} ago")
    assert card.locator(".prev").nth(2).inner_text() == "Same weekday last week: no data"
    assert kpi(page, "visitors") == "3"  # not added to the estimated figures
    # the calibrated bands of the estimated figures on their cards; none on the portal's exact counts
    assert_band(page, "visitors", likely(cur))
    assert page.locator(".kpi[data-key=wifi_logins] .band").count() == 0
    # connected visitors present per hour, in its own column of the hourly table (w1 in hour 11; the list not read
    # from 12:00 to 13:00 nor after 16:00: no data, where 0 would say nobody was connected)
    hourly = {r[0]: r[4] for r in screen_tables(page) if len(r) == 5 and r[0].endswith(":00")}
    assert (hourly["11:00"], hourly["10:00"], hourly["12:00"], hourly["13:00"], hourly["20:00"]) == (
        "1", "0", "no data", "0", "no data")
    assert page.locator("#charts canvas").count() >= 4  # hourly, funnel, dwell, loyalty drawn by ECharts
    shown = screen_tables(page)
    assert ["Visitors", "3", "60.0%"] in shown  # funnel: 3 visitors of 5 devices heard
    assert_csv_holds_the_screen(shown, csv_of(page)[3:])  # the CSV holds the tables on screen, in plain numbers
    lo, hi = cur["uncertainty"]["bands"]["capture_rate"]
    assert ["Capture rate (ratio 0–1)", "0.6", "0.5", "+10.0 pt", str(lo), str(hi)] in csv_of(page)  # not "60.0%"
    page.screenshot(path=str(SHOTS / "dashboard-store.png"), full_page=True)
    # the same page in Chinese
    page.goto(base + "/dashboard/store/s1?lang=zh-CN")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text(".kpi[data-key=capture_rate] .label") == "进店率"
    assert kpi(page, "median_dwell_s") == "26 分钟"
    assert page.inner_text(".kpi[data-key=connected] .label") == "已连接 Wi-Fi 的顾客（精确）"
    assert page.inner_text("#connected-detail") == "连接访客 Wi-Fi · 驻店时长中位数 30 分钟 · 到访 1 次"
    assert page.inner_text("#connected-health").startswith("营业时间内仅 83.3% 收到连接设备列表")
    assert_csv_holds_the_screen(screen_tables(page), csv_of(page)[3:])
    page.screenshot(path=str(SHOTS / "dashboard-store-zh.png"), full_page=False)
    # a store manager cannot open another store's page, nor its API
    r = page.goto(base + "/dashboard/store/s2?lang=en")
    assert r.status == 403 and "You may not see these numbers." in page.inner_text("#error")
    assert page.request.get(base + "/api/v1/stores/s2/dashboard").status == 403
    page.context.close()


def test_mall_operator_compares_stores(browser: Any, base: str, app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    m = report.mall_range(engine, "m1", DAY, DAY)
    page = open_as(browser, base, "ops-m1", "/dashboard?lang=en")
    assert page.url.startswith(base + "/dashboard/mall/m1")
    rows = page.locator("#table-stores tbody tr")
    shown = [rows.nth(i).locator("td").all_inner_texts()[:3] for i in range(rows.count())]
    assert shown == [[s["name"], str(s["passersby"]), str(s["visitors"])] for s in m["stores"]]
    assert kpi(page, "visitors") == str(m["totals"]["visitors"]) == "4"
    assert_band(page, "visitors", likely(m["totals"]))
    # connected shoppers of the mall, exact and apart: w1 on the guest Wi-Fi at both stores counts once
    card = page.locator(".kpi[data-key=connected]")
    assert card.get_attribute("data-basis") == "connected_stations"
    assert kpi(page, "connected") == str(m["totals"]["connected"]["visitors"]) == "1"
    columns = page.locator("#table-stores thead th").all_inner_texts()
    assert columns[7:10] == ["Visitors, likely from", "Visitors, likely to", "Connected (exact)"]
    assert [rows.nth(i).locator("td").all_inner_texts()[7:9] for i in range(rows.count())] == [
        likely(s)[len("likely "):].split("–") for s in m["stores"]] == [["2", "5"], ["1", "3"]]
    # the connected column: a lower bound where the store's AP list was read in part of the opening hours only
    assert [rows.nth(i).locator("td").all_inner_texts()[9] for i in range(rows.count())] == [
        "≥ 1 (list read 83.3%)", "1"] and [s["connected"]["visitors"] for s in m["stores"]] == [1, 1]
    assert page.locator("#table-transitions tbody tr").first.locator("td").all_inner_texts() == ["星巴克", "优衣库", "1"]
    assert page.locator(".multiples canvas").count() == 2  # one small chart per store
    # sortable: visitors ascending puts 优衣库 (2) first
    page.click("#table-stores th[data-col='2']")
    page.click("#table-stores th[data-col='2']")
    assert rows.nth(0).locator("td").first.inner_text() == "优衣库"
    # the same rows whatever the sort order on screen (the CSV in the server's order): matched by table and name
    def keyed(lines: list[list[str]]) -> dict[tuple[str, str], list[str]]:
        out, title = {}, ""
        for r in lines:
            if len(r) == 1:
                title = r[0]
            elif r:
                out[(title, r[0])] = r
                out.setdefault((title, r[0].rsplit(" (", 1)[0]), r)  # a summary row's name with its unit
        return out

    screen, rows = screen_tables(page), keyed(csv_of(page)[3:])
    title = ""
    matched = []
    for r in screen:
        title = r[0] if len(r) == 1 else title
        matched.append(rows[(title, r[0])] if len(r) > 1 else r)
    assert_csv_holds_the_screen(screen, matched)
    page.screenshot(path=str(SHOTS / "dashboard-mall.png"), full_page=True)
    # a mall operator may open their stores, not another mall's store nor the operator view
    options = page.locator("#nav option").all_inner_texts()
    assert options == ["Mall · 万达广场", "Store · 星巴克", "Store · 优衣库"]
    assert page.request.get(base + "/api/v1/stores/s3/dashboard").status == 403
    assert page.request.get(base + "/api/v1/operator/dashboard").status == 403
    page.context.close()


def test_empty_state_and_operator_view(browser: Any, base: str, app: Flask) -> None:
    page = open_as(browser, base, "boss-s3", "/dashboard?lang=en")
    assert page.inner_text("#status") == "No data yet: the sensor of this store has not sent anything."
    assert page.locator("#charts canvas").count() == 0
    page.screenshot(path=str(SHOTS / "dashboard-empty.png"))
    page.context.close()
    page = open_as(browser, base, "admin", f"/dashboard?lang=en&start={DAY}")
    assert page.url.startswith(base + "/dashboard/operator")
    names = page.locator("#table-malls tbody tr td:first-child").all_inner_texts()
    assert names == ["万达广场", "Joy City"]
    # the operator's totals: cards with the band of the sum, and the connected shoppers apart
    op = report.operator_range(app.extensions["keliu"].engine, DAY, DAY)
    assert kpi(page, "visitors") == str(op["totals"]["visitors"])
    assert_band(page, "visitors", likely(op["totals"]))
    assert kpi(page, "connected") == str(op["totals"]["connected"]["visitors"]) == "1"
    assert page.locator("#table-totals tbody tr").count() == 5
    page.screenshot(path=str(SHOTS / "dashboard-operator.png"))
    page.context.close()
