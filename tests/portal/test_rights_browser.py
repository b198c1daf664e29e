"""The member's rights pages in Debian's chromium (headless) at phone size (390×844), in zh-CN and English: no
horizontal overflow, no Content-Security-Policy violation; a consent withdrawn and the account deleted by clicking."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from keliu.gate import MemoryGate
from portal.edges.sms_backends import ConsoleSms
from portal.store import rights
from tests.conftest import CHROMIUM, require
from tests.portal.conftest import FakeClock, Phone, make_app

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def served(sqlite_url: str, var_dir: Path, sms: ConsoleSms) -> Iterator[tuple[Flask, str, int, ConsoleSms]]:
    app = make_app(sqlite_url, var_dir, MemoryGate(), FakeClock(), sms, {"10.77.0.20": "3c:22:fb:00:00:01"})
    Phone(app, "10.77.0.20").login(sms, marketing=True, analytics=True)
    with app.extensions["keliu"].engine.connect() as conn:
        mid = rights.find(conn, "+8613812345678")
    assert mid is not None
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}", mid, sms
    finally:
        server.shutdown()
        thread.join()


def session_cookie(app: Flask, member_id: int) -> str:
    """The member login's cookie (``session["member_id"]``), signed as Flask signs it."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return str(serializer.dumps({"member_id": member_id}))


def test_rights_pages_fit_a_phone_and_work(served: tuple[Flask, str, int, ConsoleSms]) -> None:
    require(os.path.exists(CHROMIUM), f"chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    app, base, mid, sms = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
            ctx.add_cookies([{"name": "keliu", "value": session_cookie(app, mid), "url": base}])
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)

            def fits(path: str) -> Any:
                page.goto(base + path)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
                return page

            for lang in ("zh-CN", "en"):
                for path in ("/member/data", "/member/data/all", "/member/data/phone"):
                    fits(f"{path}?lang={lang}")
            # the phone change: a code to the new number, then the code
            fits("/member/data/phone?lang=zh-CN")
            page.fill("#phone", "139 0013 9000")
            page.click("#send")
            assert page.inner_text("#notice") == "验证码已发送到新手机号"
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.fill("#code", sms.last["+8613900139000"])
            page.click("#verify")
            assert page.inner_text("#notice") == "手机号已更换" and page.inner_text("#phone") == "139****9000"
            assert "我的数据" in fits("/member/data?lang=zh-CN").inner_text("header")
            page.click("#withdraw-analytics")
            assert page.inner_text("#notice") == "已撤回"
            assert page.locator("#withdraw-analytics").count() == 0
            page.check("#confirm")
            page.click("#delete")
            assert "已注销" in page.inner_text("#message")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert errors == []
        finally:
            browser.close()
    with app.extensions["keliu"].engine.connect() as conn:
        assert rights.find(conn, "+8613812345678") is None and rights.find(conn, "+8613900139000") is None
