"""WeChat's two request signatures (pure).

* 微信连Wi-Fi (portal-type device): the portal page hands ``Wechat_GotoRedirect`` a
  ``sign = MD5(appId + extend + timestamp + shop_id + authUrl + mac + ssid + bssid + secretKey)``, lower-case hex,
  timestamp in milliseconds. It is computed on the server because ``secretKey`` must never reach the page.
* Official-account pushes: ``signature = SHA1(join(sorted([token, timestamp, nonce])))``, lower-case hex; every push
  is checked before its body is looked at.

Comparisons are constant-time. Nothing here logs: the inputs include secrets.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class WifiSignInput:
    """The fields of one 连Wi-Fi hand-off, in the order the documented formula concatenates them."""

    app_id: str
    extend: str
    timestamp: str  # milliseconds since the epoch, as text
    shop_id: str
    auth_url: str
    mac: str
    ssid: str
    bssid: str


def wifi_sign(fields: WifiSignInput, secret_key: str) -> str:
    """``MD5(appId+extend+timestamp+shop_id+authUrl+mac+ssid+bssid+secretKey)`` as 32 lower-case hex digits."""
    text = (
        fields.app_id + fields.extend + fields.timestamp + fields.shop_id + fields.auth_url
        + fields.mac + fields.ssid + fields.bssid + secret_key
    )
    # MD5 is WeChat's choice, not ours; it is a protocol field, not a security primitive we rely on.
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def verify_wifi_sign(fields: WifiSignInput, secret_key: str, sign: str) -> bool:
    return hmac.compare_digest(wifi_sign(fields, secret_key), sign.lower())


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """The official-account signature: SHA1 over the three values sorted as strings and joined without separator."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode("utf-8")).hexdigest()


def verify_push(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    """True when ``signature`` is the push signature of ``token``, ``timestamp`` and ``nonce``."""
    if not token:
        return False  # an unset token must never make an empty-string signature acceptable
    return hmac.compare_digest(push_signature(token, timestamp, nonce), signature.lower())
