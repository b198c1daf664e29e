"""The JSON API refuses what another site's page can send (issue 12 item 6): a cross-site form POST to
``/api/session/logout`` used to end the shopper's session (no cookie, no token needed)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from portal.edges.sms_backends import ConsoleSms
from portal.web.api import same_origin
from tests.portal.conftest import FakeClock, Phone
from tests.portal.live import LivePortal, live_portal

EVIL = "http://evil.example"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def api_rules(app: Flask) -> list[tuple[str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        # the POS API authenticates by a bearer token, which no other site's page holds or can make a browser
        # send (no ambient credential: nothing to forge); without one it answers 401 (tests/marketing/test_api.py);
        # the SMS provider's reply callback by the secret in its URL, likewise: without it, 404 and nothing
        # changes (tests/marketing/test_sms_replies.py)
        if rule.rule.startswith("/api/") and not rule.endpoint.startswith(("marketing_api.",
                                                                           "marketing_sms_replies.")):
            path = rule.rule.replace("<int:", "<").replace("<", "").replace(">", "")
            out.extend((m, path) for m in sorted((rule.methods or set()) & UNSAFE))
    return out


def online(phone: Phone) -> bool:
    return bool(phone.get("/api/session").json["online"])


def test_every_state_changing_api_endpoint_refuses_cross_site_requests(app: Flask, phone: Phone,
                                                                       sms: ConsoleSms) -> None:
    rules = api_rules(app)
    assert ("POST", "/api/session/logout") in rules and len(rules) >= 3
    phone.login(sms, reauth=True)
    assert online(phone)
    for method, path in rules:
        attacks: list[dict[str, Any]] = [
            {"data": {"x": "1"}, "headers": {"Origin": EVIL}},  # an HTML form on another site
            {"data": "{}", "headers": {"Origin": EVIL, "Content-Type": "text/plain"}},  # fetch, no-cors
            {"data": "", "headers": {}},  # no body, no type: navigator.sendBeacon, a bare form
            {"data": "{}", "headers": {"Origin": EVIL, "Content-Type": "application/json"}},  # had CORS allowed it
            {"data": "{}", "headers": {"Origin": "null", "Content-Type": "application/json"}},  # sandboxed iframe
            {"data": "{}", "headers": {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}},
        ]
        for attack in attacks:
            client = app.test_client()  # no cookie, as a third-party form post usually is
            r = client.open(path, method=method, environ_base={"REMOTE_ADDR": phone.ip}, **attack)
            assert r.status_code in (400, 403), (method, path, attack, r.status_code)
            assert r.json["error"] in ("unsupported_media_type", "cross_origin")
    assert online(phone)


def test_the_api_still_works_for_apps_and_the_portals_own_pages(app: Flask, phone: Phone, sms: ConsoleSms,
                                                                clock: FakeClock) -> None:
    phone.login(sms)
    r = phone.post("/api/session/logout", data="{}", content_type="application/json",
                   headers={"Origin": "http://10.77.0.1:8080"})  # the portal's own origin (public_url)
    assert r.status_code == 200 and r.json == {"online": False, "ended": True}
    clock.advance(600)  # the SMS resend interval
    phone.login(sms)
    r = phone.post("/api/session/logout", content_type="application/json")  # an app: no Origin, no body
    assert r.status_code == 200 and r.json["ended"] is True
    assert phone.post("/api/session/logout", data="[]", content_type="application/json").status_code == 400
    assert phone.get("/api/captive", headers={"Accept": "application/captive+json"}).status_code == 200


@pytest.mark.parametrize(("origin", "ok"), [
    ("http://10.77.0.1:8080", True), ("http://portal.keliu.lan", True), ("https://portal.keliu.lan:8443", True),
    ("http://evil.example", False), ("null", False), ("http://10.77.0.1.evil.example", False), ("file://", False),
    ("http://evil.example:8080", False),  # even when the request's Host is evil.example (DNS rebinding)
])
def test_same_origin(origin: str, ok: bool) -> None:
    assert same_origin(origin, frozenset({"10.77.0.1", "portal.keliu.lan"})) is ok


# --- on the wire, against gunicorn -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with live_portal(tmp_path_factory.mktemp("api")) as portal:
        yield portal


@pytest.mark.integration
def test_a_cross_site_form_post_does_not_log_the_shopper_out(live: LivePortal) -> None:
    before = live.sms_count("5678")
    r = requests.post(live.base + "/api/login/sms/code", json={"phone": "13812345678"}, timeout=10)
    assert r.status_code == 202, r.text
    r = requests.post(live.base + "/api/login/sms/verify", timeout=10, json={
        "phone": "13812345678", "code": live.sms_code("5678", before), "consents": {"terms": True, "reauth": True}})
    assert r.status_code == 200 and r.json()["online"] is True, r.text

    def is_online() -> bool:
        return bool(requests.get(live.base + "/api/session", timeout=10).json()["online"])

    assert is_online()
    # what the browser sends for <form method=post action=http://portal/api/session/logout> on evil.example
    r = requests.post(live.base + "/api/session/logout", data={"x": "1"}, timeout=10,
                      headers={"Origin": EVIL, "Referer": EVIL + "/", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_media_type"
    r = requests.post(live.base + "/api/session/logout", data="{}", timeout=10,
                      headers={"Origin": EVIL, "Content-Type": "application/json"})
    assert r.status_code == 403 and r.json()["error"] == "cross_origin"
    assert is_online()
    r = requests.post(live.base + "/api/session/logout", json={}, timeout=10, headers={"Origin": live.base})
    assert r.status_code == 200 and r.json()["ended"] is True
    assert not is_online()
