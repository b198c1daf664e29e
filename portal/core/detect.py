"""Captive-portal detection: the OS probe URLs and the RFC 8908 Captive Portal API (pure).

Every OS asks a known plain-HTTP URL and expects a known answer; any other answer (our redirect) makes it show the
login sheet. After login the portal answers a probe that still reaches it with exactly the expected body, so the
sheet closes at once. Chinese Android vendors use their own hosts (MIUI ``connect.rom.miui.com``, Huawei/Honor
``connectivitycheck.platform.hicloud.com``, OPPO/realme ``conn1|conn2.oppomobile.com``, vivo
``wifi.vivo.com.cn``), all on ``/generate_204``.
"""
from __future__ import annotations

from dataclasses import dataclass

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"


@dataclass(frozen=True)
class Probe:
    vendor: str
    status: int
    body: str
    content_type: str = "text/plain"


_APPLE = Probe("apple", 200, APPLE_SUCCESS, "text/html")
_ANDROID = Probe("android", 204, "")

#: (host, path) → what the OS expects when it is online. Hosts are documentation; matching is by path and host.
PROBES: dict[tuple[str, str], Probe] = {
    ("captive.apple.com", "/hotspot-detect.html"): _APPLE,
    ("captive.apple.com", "/"): _APPLE,
    ("www.apple.com", "/library/test/success.html"): _APPLE,
    ("connectivitycheck.gstatic.com", "/generate_204"): _ANDROID,
    ("connectivitycheck.android.com", "/generate_204"): _ANDROID,
    ("clients3.google.com", "/generate_204"): _ANDROID,
    ("www.google.com", "/gen_204"): _ANDROID,
    ("www.google.cn", "/generate_204"): _ANDROID,
    ("www.gstatic.com", "/generate_204"): _ANDROID,
    ("www.msftconnecttest.com", "/connecttest.txt"): Probe("windows", 200, "Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt"): Probe("windows", 200, "Microsoft NCSI"),
    ("detectportal.firefox.com", "/success.txt"): Probe("firefox", 200, "success\n"),
    ("connect.rom.miui.com", "/generate_204"): Probe("xiaomi", 204, ""),
    ("connectivitycheck.platform.hicloud.com", "/generate_204"): Probe("huawei", 204, ""),
    ("conn1.oppomobile.com", "/generate_204"): Probe("oppo", 204, ""),
    ("conn2.oppomobile.com", "/generate_204"): Probe("oppo", 204, ""),
    ("wifi.vivo.com.cn", "/generate_204"): Probe("vivo", 204, ""),
}

_BY_PATH: dict[str, Probe] = {
    "/hotspot-detect.html": _APPLE,
    "/library/test/success.html": _APPLE,
    "/generate_204": _ANDROID,
    "/gen_204": _ANDROID,
    "/connecttest.txt": Probe("windows", 200, "Microsoft Connect Test"),
    "/ncsi.txt": Probe("windows", 200, "Microsoft NCSI"),
    "/success.txt": Probe("firefox", 200, "success\n"),
}


def classify(host: str, path: str) -> Probe | None:
    """The probe a request is, by exact (host, path), else by a well-known path on any host; else None."""
    name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host.lower()
    return PROBES.get((name, path)) or _BY_PATH.get(path)


CAPTIVE_JSON = "application/captive+json"


def negotiate(accept: str | None) -> str | None:
    """The content type to answer an RFC 8908 request with, or None (→ 406).

    A missing Accept means anything. ``application/captive+json`` is preferred; ``application/json``, ``*/*`` and
    ``application/*`` are also served with it, honouring q-values (``q=0`` refuses).
    """
    if accept is None or not accept.strip():
        return CAPTIVE_JSON
    # media-type parameters other than q (charset, version) do not change what we can serve
    ranges = []
    for part in accept.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        q = next((p[2:] for p in params if p.lower().startswith("q=")), None)
        ranges.append(kind if q is None else f"{kind};q={q}")
    parsed = parse_accept_header(", ".join(r for r in ranges if r), MIMEAccept)
    return parsed.best_match([CAPTIVE_JSON, "application/json"])


def api_body(captive: bool, user_portal_url: str, venue_info_url: str | None, seconds_remaining: int | None,
             can_extend: bool) -> dict[str, object]:
    """The RFC 8908 JSON object. ``seconds-remaining`` only while the client is not captive."""
    body: dict[str, object] = {"captive": captive, "user-portal-url": user_portal_url}
    if venue_info_url:
        body["venue-info-url"] = venue_info_url
    if not captive and seconds_remaining is not None:
        body["seconds-remaining"] = seconds_remaining
        body["can-extend-session"] = can_extend
    return body
