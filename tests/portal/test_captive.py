"""Captive detection, landing URL, splash and RFC 8908 through the Flask app (MemoryGate, SQLite)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.gate import AllowClient, MemoryGate, RevokeClient
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import landing_urls
from portal.web.headers import FIXED
from tests.portal.conftest import T0, FakeClock, Phone, make_app
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


def wsgi(app: Flask, method: str, host: str, path: str, ip: str = "10.77.0.20") -> tuple[Any, ...]:
    """One request through the app's WSGI stack (the Interceptor first), as a server such as gunicorn sees it:
    (status line, header list, body)."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(method=method, path=path, headers=[("Host", host)],
                             environ_base={"REMOTE_ADDR": ip}).get_environ()
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.extend([status, list(headers)])

    body = b"".join(app.wsgi_app(environ, start_response))
    return (*got, body)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_prebuilt_answers_are_the_werkzeug_responses_byte_for_byte(method: str) -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.utils import redirect

    from portal.core.detect import PROBES
    from portal.web.captive import Prebuilt, _fixed, _foreign, probe_answer

    environ = EnvironBuilder(method=method, path="/generate_204").get_environ()

    def answer(app: Any) -> tuple[object, ...]:
        got: list[object] = []
        body = b"".join(app(environ, lambda status, headers, exc_info=None: got.extend([status, list(headers)])))
        return (*got, body)

    for make in [lambda: _fixed(redirect(SPLASH, 302))] + [lambda p=p: _foreign(probe_answer(p))
                                                              for p in set(PROBES.values())]:
        assert answer(Prebuilt(make())) == answer(make())


def test_captive_answer_is_the_same_from_the_database_and_from_the_memo(app: Flask, sms: ConsoleSms) -> None:
    first = wsgi(app, "GET", "connectivitycheck.gstatic.com", "/generate_204")
    svc = app.extensions["keliu"]
    assert svc.client("10.77.0.20").device_id in svc.captive_memo
    again = wsgi(app, "GET", "connectivitycheck.gstatic.com", "/generate_204")
    head = wsgi(app, "HEAD", "captive.apple.com", "/hotspot-detect.html")
    page = wsgi(app, "GET", "www.example.cn", "/news")
    assert first == again == page and head == (first[0], first[1], b"")
    status, headers, body = first
    assert status == "302 FOUND"
    assert dict(headers) == {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body)),
                             "Location": SPLASH, "Cache-Control": "no-store", **FIXED}  # no Connection: kept alive
    stranger = wsgi(app, "GET", "connectivitycheck.gstatic.com", "/generate_204", ip="10.9.9.9")
    assert stranger == first  # a pseudo-MAC with the memory Gate, captive the same way

    assert Phone(app, "10.77.0.20").login(sms).status_code == 303
    online = [wsgi(app, m, "connectivitycheck.gstatic.com", "/generate_204") for m in ("GET", "GET", "HEAD")]
    assert online[0] == online[1] == online[2] == ("204 NO CONTENT", [("Content-Type", "text/plain"),
                                                                      ("Cache-Control", "no-store"),
                                                                      ("Connection", "close"), *FIXED.items()],
                                                   b"")
    apple = [wsgi(app, m, "captive.apple.com", "/hotspot-detect.html") for m in ("GET", "HEAD")]
    assert apple[0][0] == "200 OK" and b"Success" in apple[0][2] and apple[1] == (*apple[0][:2], b"")
    assert ("Connection", "close") in apple[0][1]


# --- the (MAC . IP) binding: a cloned MAC, the DHCP lease, remember-this-device (portal.core.binding) -------------------

MAC = "3c:22:fb:00:00:01"
PROBE = ("/generate_204", "connectivitycheck.gstatic.com")


def lease_line(ip: str = "10.77.0.20", mac: str = MAC, hostname: str = "Zhangs-phone",
               client_id: str = "01:" + MAC, expiry: float = T0 + 30 * 86400) -> str:
    return f"{int(expiry)} {mac} {ip} {hostname} {client_id}\n"


@pytest.fixture
def lease_file(tmp_path: Path) -> Path:
    path = tmp_path / "dnsmasq.leases"
    path.write_text(lease_line() + lease_line("10.77.0.21", "3c:22:fb:00:00:02", "other", "*"))
    return path


@pytest.fixture
def leased_app(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
               neighbours: dict[str, str], lease_file: Path) -> Flask:
    return make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"dhcp_leases": str(lease_file)})


def test_a_clone_of_a_logged_in_mac_at_another_ip_stays_captive(app: Flask, phone: Phone, sms: ConsoleSms,
                                                                 gate: MemoryGate, neighbours: dict[str, str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    assert phone.login(sms).status_code == 303
    neighbours["10.77.0.99"] = MAC  # another device took the victim's MAC, on another address
    clone = Phone(app, "10.77.0.99")
    assert clone.get(*PROBE).status_code == 302
    assert clone.get("/news", host="www.example.cn").status_code == 302
    assert [(c.mac, c.ip) for c in gate.clients()] == [(MAC, "10.77.0.20")]
    assert not any(isinstance(c, AllowClient) and c.ip == "10.77.0.99" for c in gate.log)
    assert clone.get("/").status_code == 200  # the splash, not "/status": it is not the one logged in
    assert json.loads(clone.get("/api/captive").data)["captive"] is True
    assert clone.get("/api/session").json["online"] is False
    device = app.extensions["keliu"].device_of(MAC)
    refused = [r.getMessage() for r in caplog.records if "heal refused" in r.getMessage()]
    assert refused and all(device in m and "10.77.0.99" in m and "other_ip" in m for m in refused)
    assert MAC not in caplog.text and MAC.replace(":", "") not in caplog.text
    assert phone.get(*PROBE).status_code == 204  # the phone that logged in is still online


def test_the_gate_losing_a_client_heals_only_its_own_pair(leased_app: Flask, sms: ConsoleSms, gate: MemoryGate,
                                                          neighbours: dict[str, str]) -> None:
    phone = Phone(leased_app, "10.77.0.20")
    assert phone.login(sms).status_code == 303
    gate.allowed.clear()  # e.g. the router rebooted
    neighbours["10.77.0.99"] = MAC
    assert Phone(leased_app, "10.77.0.99").get(*PROBE).status_code == 302  # the clone does not heal
    assert gate.allowed == {}
    assert phone.get(*PROBE).status_code == 204  # the phone does, on its own lease
    assert [(c.mac, c.ip) for c in gate.clients()] == [(MAC, "10.77.0.20")]


def test_an_unreadable_lease_file_refuses_heal_but_not_an_sms_login(leased_app: Flask, sms: ConsoleSms,
                                                                    gate: MemoryGate, lease_file: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    lease_file.unlink()
    phone = Phone(leased_app, "10.77.0.20")
    assert phone.login(sms, reauth=True).status_code == 303  # the SMS authorizes it
    assert MAC in gate.allowed
    gate.allowed.clear()
    assert phone.get(*PROBE).status_code == 302  # fail closed: the lease cannot be confirmed
    assert gate.allowed == {} and "leases_unreadable" in caplog.text


def test_remember_this_device_needs_the_same_dhcp_client_on_the_same_lease(
        leased_app: Flask, sms: ConsoleSms, gate: MemoryGate, clock: FakeClock, lease_file: Path,
        neighbours: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    from portal.store.models import logins

    phone = Phone(leased_app, "10.77.0.20")
    assert phone.login(sms, reauth=True).status_code == 303
    clock.advance(86400 + 60)  # the session expired; days later the MAC comes back ...
    # ... from a device with another DHCP client id and host name, on the same address
    lease_file.write_text(lease_line(hostname="clone", client_id="ff:12:34:56:78"))
    assert phone.get(*PROBE).status_code == 302
    assert phone.get("/").status_code == 200  # the splash: an SMS is needed
    # ... from another address, its own lease with the phone's DHCP client id and host name copied
    neighbours["10.77.0.99"] = MAC
    lease_file.write_text(lease_line("10.77.0.99"))
    memo = leased_app.extensions["keliu"].captive_memo
    memo.clear()  # the captive answer of this device is remembered for a second in this process
    assert Phone(leased_app, "10.77.0.99").get(*PROBE).status_code == 302
    # ... from the address, while the DHCP server gave it to another MAC
    lease_file.write_text(lease_line(mac="3c:22:fb:00:00:07"))
    memo.clear()
    assert phone.get(*PROBE).status_code == 302
    with leased_app.extensions["keliu"].engine.connect() as conn:
        assert [r.method for r in conn.execute(sa.select(logins)).all()] == ["sms"]
    assert not any(isinstance(c, AllowClient) for c in gate.log[1:])
    assert "lease_changed" in caplog.text and "other_ip" in caplog.text and "lease_of_other_mac" in caplog.text
    # the phone itself, its lease renewed to the same address: re-authorized without SMS
    lease_file.write_text(lease_line(expiry=clock.t + 7200))
    memo.clear()
    assert phone.get(*PROBE).status_code == 204
    assert gate.allowed[MAC].ip == "10.77.0.20"


def test_a_clone_at_another_ip_cannot_log_the_phone_out(app: Flask, phone: Phone, sms: ConsoleSms,
                                                        gate: MemoryGate, neighbours: dict[str, str]) -> None:
    from portal.store.models import devices

    assert phone.login(sms, reauth=True).status_code == 303
    neighbours["10.77.0.99"] = MAC
    clone = Phone(app, "10.77.0.99")
    assert clone.post("/logout", data={"csrf_token": clone.splash_token()}).status_code == 200
    assert clone.post("/api/session/logout", json={}).json == {"online": False, "ended": False}
    assert [(c.mac, c.ip) for c in gate.clients()] == [(MAC, "10.77.0.20")]
    assert not any(isinstance(c, RevokeClient) for c in gate.log)
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(devices.c.reauth_until)).scalar() is not None  # not withdrawn
    assert phone.get(*PROBE).status_code == 204
