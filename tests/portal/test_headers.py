"""Security headers on every page (issue 12 item 15): the splash, member and WeChat pages, admin, the built-in
dashboard, the API, error pages; as gunicorn sends them. And no template runs inline script, which the policy would
block."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from portal.web import headers
from tests.conftest import ROOT
from tests.portal.conftest import AuthActions
from tests.portal.live import LivePortal, live_portal


def assert_secured(resp: Any, where: str) -> None:
    h = resp.headers
    csp = h.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ") if d}
    assert directives.get("frame-ancestors") == ["'none'"], (where, csp)
    assert "'unsafe-inline'" not in directives.get("script-src", ["'unsafe-inline'"]), (where, csp)
    assert "'unsafe-eval'" not in directives["script-src"] and directives.get("object-src") == ["'none'"], where
    assert h.get("X-Frame-Options") == "DENY", where
    assert h.get("X-Content-Type-Options") == "nosniff", where
    assert h.get("Referrer-Policy") in ("no-referrer", "same-origin"), where


def test_policy_text() -> None:
    assert headers.policy() == ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'")
    assert "script-src 'self' https://wifi.weixin.qq.com;" in headers.policy(("https://wifi.weixin.qq.com",))


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://a.example; script-src *", "data:x", "https://*.x",
                                 "//wifi.weixin.qq.com/x.js", "https:///x"])
def test_only_plain_http_origins_widen_the_policy(url: str) -> None:
    with pytest.raises(ValueError):
        headers.origin_of(url)


def test_every_get_route_and_error_page_has_the_headers(app: Flask, client: Any, auth: AuthActions) -> None:
    auth.login()
    seen = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or rule.arguments:
            continue
        for c in (client, app.test_client()):  # logged in, and not (a redirect to the login)
            r = c.get(rule.rule, environ_base={"REMOTE_ADDR": "10.77.0.20"})
            assert_secured(r, f"{rule.rule} {r.status_code}")
            seen += 1
    assert seen > 20
    for path, status in (("/no/such/page", 404), ("/admin/logout", 405), ("/api/session/logout", 405)):
        r = client.get(path)
        assert r.status_code == status
        assert_secured(r, path)
    r = client.post("/admin/sessions/1/kick")  # no CSRF token: 400
    assert r.status_code == 400
    assert_secured(r, "csrf error")


TEMPLATES = sorted((ROOT / "portal" / "templates").rglob("*.html")) + sorted(
    (ROOT / "dashboards" / "builtin" / "templates").rglob("*.html")) + sorted(
    (ROOT / "keliu" / "accounts" / "templates").rglob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_or_event_handlers(path: Path) -> None:
    html = path.read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
        assert "src=" in tag or 'type="application/json"' in tag, (path.name, tag)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html, flags=re.IGNORECASE), path.name
    assert "javascript:" not in html.lower(), path.name


# --- on the wire, against gunicorn -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with live_portal(tmp_path_factory.mktemp("headers")) as portal:
        yield portal


@pytest.mark.integration
def test_gunicorn_sends_the_headers_on_every_kind_of_page(live: LivePortal) -> None:
    with requests.Session() as s:
        pages = ["/", "/?lang=en", "/status", "/privacy", "/admin/login", "/admin", "/dashboard", "/wechat/",
                 "/api/captive", "/api/session", "/api/openapi.json", "/no/such/page"]
        for path in pages:
            assert_secured(s.get(live.base + path, allow_redirects=False, timeout=10), path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', s.get(live.base + "/admin/login", timeout=10).text)
        assert token is not None
        r = s.post(live.base + "/admin/login", data={"csrf_token": token.group(1), "name": "admin",
                                                     "password": live.admin_password()}, timeout=10)
        # the generated first password: to be changed before anything else
        assert r.url == live.base + "/admin/password?next=%2Fadmin"
        assert_secured(r, "/admin/password")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', r.text)
        assert token is not None
        r = s.post(live.base + "/admin/password?next=%2Fadmin", timeout=10, data={
            "csrf_token": token.group(1), "old": live.admin_password(), "new": "an admin password",
            "new2": "an admin password"})
        assert r.url == live.base + "/admin"
        for path in ("/admin", "/admin/splash/demo-store", "/admin/users", "/admin/password", "/dashboard",
                     "/api/v1/dashboard/me", "/terms", "/favicon.ico"):
            r = s.get(live.base + path, timeout=10)
            assert r.status_code == 200, (path, r.status_code)
            assert_secured(r, path)
        # the splash editor's preview may be framed by the console itself, and runs no script
        r = s.get(live.base + "/admin/splash/demo-store/preview", timeout=10)
        csp = {d.split()[0]: d.split()[1:] for d in r.headers["Content-Security-Policy"].split("; ")}
        assert csp["frame-ancestors"] == ["'self'"] and csp["script-src"] == ["'none'"]
        assert csp["object-src"] == ["'none'"] and r.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert_secured(s.post(live.base + "/admin/logout", timeout=10, allow_redirects=False), "csrf error")
