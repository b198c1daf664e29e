"""Live occupancy on the built-in dashboard in Debian's chromium: the store and the mall page show the figure,
its band and its stores, and the page picks up a shopper who walks in without a reload (its poll)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from sensor import store as sensor_store
from tests.conftest import launch_chromium, serve_wsgi
from tests.dashboards.app import PASSWORD, make_app
from tests.dashboards.test_builtin_live import NOW, at, seed

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = make_app(tmp_path_factory.mktemp("live"), clock=NOW)
    engine = app.extensions["keliu"].engine
    seed(engine)
    yield app
    engine.dispose()


@pytest.fixture(scope="module")
def base(app: Flask) -> Iterator[str]:
    with serve_wsgi(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch_chromium() as b:
        yield b


def open_as(browser: Any, base: str, user: str, path: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + path)
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert errors == []
    return page


def live_text(page: Any) -> dict[str, str]:
    return dict(page.evaluate("""() => {
        const box = document.getElementById('live');
        if (box.hidden) return {};
        const q = s => (box.querySelector(s) || {}).textContent;
        return {label: q('.label'), value: q('#live-value'), band: q('#live-band'), detail: q('#live-detail')};
    }"""))


def test_store_page_shows_who_is_in_store_now_and_follows_it(browser: Any, base: str, app: Flask) -> None:
    page = open_as(browser, base, "boss-s1", "/dashboard/store/s1?lang=en")
    shown = live_text(page)
    assert (shown["label"], shown["value"]) == ("In store now", "2")
    assert shown["band"].startswith("likely ") and shown["detail"].startswith("last 10 min · staying ≥ 5 min: 1")
    assert page.is_visible("#live")
    assert page.inner_text("#live-connected") == "on the guest Wi-Fi now: 2 (exact)"  # hostapd's stations
    # a shopper walks in: the page's poll shows it without a reload (at most live_poll_s later)
    sensor_store.insert_sightings(app.extensions["keliu"].engine, [at(1, "walk-in", -56)])
    deadline = time.monotonic() + 40
    while live_text(page)["value"] != "3" and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert live_text(page)["value"] == "3"
    page.goto(base + "/dashboard/store/s1?lang=zh-CN")
    page.wait_for_selector("body[data-ready='1']")
    assert live_text(page)["label"] == "当前在店人数" and live_text(page)["band"].startswith("可能范围 ")
    page.context.close()


def test_mall_page_shows_the_mall_and_each_store(browser: Any, base: str) -> None:
    page = open_as(browser, base, "ops-m1", "/dashboard/mall/m1?lang=zh-CN")
    shown = live_text(page)
    api = page.request.get(base + "/api/v1/malls/m1/live").json()  # 3, or 4 after the walk-in of the test above
    assert shown["label"] == "商场当前人数" and shown["value"] == str(api["occupancy"]) and api["occupancy"] >= 3
    stores = page.evaluate("[...document.querySelectorAll('#live .live-stores li')].map(li => li.textContent)")
    assert stores == [f"星巴克{api['stores'][0]['value']}", "优衣库2"]
    page.context.close()
