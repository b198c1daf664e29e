"""detect (pure): every OS probe is classified, and the RFC 8908 Accept negotiation."""
from __future__ import annotations

import pytest

from portal.core import detect

PROBES = [
    ("captive.apple.com", "/hotspot-detect.html", "apple", 200),
    ("www.apple.com", "/library/test/success.html", "apple", 200),
    ("connectivitycheck.gstatic.com", "/generate_204", "android", 204),
    ("www.google.com", "/gen_204", "android", 204),
    ("clients3.google.com", "/generate_204", "android", 204),
    ("www.msftconnecttest.com", "/connecttest.txt", "windows", 200),
    ("www.msftncsi.com", "/ncsi.txt", "windows", 200),
    ("detectportal.firefox.com", "/success.txt", "firefox", 200),
    ("connect.rom.miui.com", "/generate_204", "xiaomi", 204),
    ("connectivitycheck.platform.hicloud.com", "/generate_204", "huawei", 204),
    ("conn1.oppomobile.com", "/generate_204", "oppo", 204),
    ("conn2.oppomobile.com", "/generate_204", "oppo", 204),
    ("wifi.vivo.com.cn", "/generate_204", "vivo", 204),
]


@pytest.mark.parametrize(("host", "path", "vendor", "status"), PROBES)
def test_probe_is_classified(host: str, path: str, vendor: str, status: int) -> None:
    probe = detect.classify(host, path)
    assert probe is not None
    assert (probe.vendor, probe.status) == (vendor, status)


def test_host_with_port_and_case() -> None:
    probe = detect.classify("CONNECT.ROM.MIUI.COM:80", "/generate_204")
    assert probe is not None and probe.vendor == "xiaomi"


def test_a_page_is_not_a_probe() -> None:
    assert detect.classify("example.com", "/news/today.html") is None


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "application/captive+json"),
    ("", "application/captive+json"),
    ("application/captive+json", "application/captive+json"),
    ("application/captive+json; charset=utf-8", "application/captive+json"),
    ("application/json", "application/json"),
    ("*/*", "application/captive+json"),
    ("application/*;q=0.5, text/html", "application/captive+json"),
    ("text/html, application/captive+json;q=0.1", "application/captive+json"),
    ("application/captive+json;q=0, application/json", "application/json"),
    ("text/html", None),
    ("image/png, text/plain", None),
])
def test_accept_negotiation(accept: str | None, expected: str | None) -> None:
    assert detect.negotiate(accept) == expected


def test_api_body_captive_has_no_time() -> None:
    assert detect.api_body(True, "http://p/", "http://p/v", 100, True) == {
        "captive": True, "user-portal-url": "http://p/", "venue-info-url": "http://p/v"}


def test_api_body_online() -> None:
    assert detect.api_body(False, "http://p/", None, 100, False) == {
        "captive": False, "user-portal-url": "http://p/", "seconds-remaining": 100, "can-extend-session": False}
