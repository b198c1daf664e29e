"""Captive detection, landing URL, splash and RFC 8908 through the Flask app (MemoryGate, SQLite)."""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.gate import MemoryGate
from portal.models import landing_urls
from portal.sms_backends import ConsoleSms
from tests.portal.conftest import Phone
from tests.portal.test_detect import PROBES

SPLASH = "http://10.77.0.1:8080/"


@pytest.mark.parametrize(("host", "path", "vendor", "status"), PROBES)
def test_every_probe_is_redirected_before_login_and_answered_after(
        app: Flask, sms: ConsoleSms, host: str, path: str, vendor: str, status: int) -> None:
    phone = Phone(app, "10.77.0.20")
    r = phone.get(path, host=host)
    assert (r.status_code, r.headers["Location"]) == (302, SPLASH)
    assert r.headers["Cache-Control"] == "no-store"
    assert phone.login(sms).status_code == 303
    r = phone.get(path, host=host)
    assert r.status_code == status
    assert r.headers["Connection"] == "close"  # a kept-alive DNATed connection would outlive the login
    if vendor == "apple":
        assert b"Success" in r.data


def test_first_page_is_kept_server_side_and_offered_after_login(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    phone.get("/news/today?id=7", host="www.example.cn")
    phone.get("/favicon.ico", host="www.example.cn")
    phone.get("/generate_204", host="connectivitycheck.gstatic.com")
    phone.get("/later.html", host="other.example")
    r = phone.login(sms)
    assert r.headers["Location"] == "http://www.example.cn/news/today?id=7"


def test_no_open_redirect_from_query_strings(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    r = phone.get("/?next=http://evil.example/&url=http://evil.example/")
    assert r.status_code == 200
    token = phone.splash_token()
    phone.post("/login/sms/code?next=http://evil.example/", data={"csrf_token": token, "phone": "13812345678"})
    r = phone.post("/login/sms/verify?next=http://evil.example/&redirect=http://evil.example/",
                   data={"csrf_token": token, "phone": "13812345678", "code": sms.last["+8613812345678"],
                         "terms": "1", "next": "http://evil.example/"})
    assert r.headers["Location"] == "/status"


def test_landing_url_of_one_phone_is_not_offered_to_another(app: Flask, sms: ConsoleSms) -> None:
    a, b = Phone(app, "10.77.0.20"), Phone(app, "10.77.0.21")
    a.get("/a.html", host="a.example")
    r = b.login(sms, "13912345678")
    assert r.headers["Location"] == "/status"
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(landing_urls)).scalar() == 1


def test_own_host_is_not_intercepted(phone: Phone) -> None:
    assert phone.get("/", host="10.77.0.1:8080").status_code == 200
    assert phone.get("/status", host="portal.keliu.lan").status_code == 200


def test_splash_is_small_self_contained_and_chinese_by_default(phone: Phone) -> None:
    r = phone.get("/")
    html = r.get_data(as_text=True)
    assert len(r.data) < 100 * 1024
    assert r.headers["Content-Language"] == "zh-CN" and 'lang="zh-CN"' in html
    assert "手机号" in html and "获取验证码" in html
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"?(https?:)?//", html)
    assert "@import" not in html and "url(" not in html


def test_three_separate_unticked_choices_and_the_required_terms(phone: Phone) -> None:
    html = phone.get("/").get_data(as_text=True)
    boxes = re.findall(r'<input type="checkbox"[^>]*>', html)
    assert [re.search(r'name="(\w+)"', b).group(1) for b in boxes] == ["terms", "marketing", "analytics", "reauth"]
    assert not any("checked" in b for b in boxes)
    assert "实名" in html


def test_english_by_accept_language_and_by_switch(phone: Phone) -> None:
    r = phone.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.headers["Content-Language"] == "en" and "Mobile number" in r.get_data(as_text=True)
    r = phone.get("/?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "Mobile number" in r.get_data(as_text=True)
    r = phone.get("/", headers={"Accept-Language": "zh-CN"})  # the switch is remembered
    assert r.headers["Content-Language"] == "en"
    r = phone.get("/?lang=zh-CN")
    assert "手机号" in r.get_data(as_text=True)


def test_rfc8908_api(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    r = phone.get("/api/captive", headers={"Accept": "application/captive+json"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/captive+json"
    assert r.headers["Cache-Control"] == "private"
    tls = "https://127.0.0.1:8443/"  # the origin of [portal] api_url: RFC 8908 wants the portal over TLS
    assert json.loads(r.data) == {"captive": True, "user-portal-url": tls, "venue-info-url": tls}
    phone.login(sms)
    body = json.loads(phone.get("/api/captive").data)
    assert body["captive"] is False and body["seconds-remaining"] == 86400 and body["can-extend-session"] is False
    assert phone.get("/api/captive", headers={"Accept": "text/html"}).status_code == 406


def test_unknown_client_is_refused_with_the_nft_gate(db_url: str, var_dir, gate: MemoryGate, clock, sms,
                                                     neighbours: dict[str, str]) -> None:
    from tests.portal.conftest import make_app

    app = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"gate": "nft"})
    stranger = Phone(app, "10.9.9.9")
    assert stranger.get("/").status_code == 403
    r = stranger.post("/api/login/sms/code", json={"phone": "13812345678"})
    assert r.status_code == 403 and r.json["error"] == "unknown_client"
    assert stranger.get("/generate_204", host="connectivitycheck.gstatic.com").status_code == 302
    assert sms.last == {}


def test_memory_gate_gives_loopback_a_stable_pseudo_mac(app: Flask) -> None:
    svc = app.extensions["keliu"]
    a, b = svc.client("127.0.0.1"), svc.client("127.0.0.1")
    assert a == b and int(a.mac[:2], 16) & 0x02
    assert svc.client("10.77.0.20").mac == "3c:22:fb:00:00:01"
