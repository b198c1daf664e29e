"""Pure parts of WeChat login: signatures, the extend token, the temporary-release policy."""
from __future__ import annotations

import pytest

from keliu.gate import ReleaseTemporarily
from portal.wechat import extend as ext
from portal.wechat.official_account import BadPush, Push, fresh, parse_push
from portal.wechat.release import ReleasePolicy, decide
from portal.wechat.sign import WifiSignInput, push_signature, verify_push, verify_wifi_sign, wifi_sign

# --- 连Wi-Fi sign -------------------------------------------------------------------------------------------------
# Derived by hand from the documented formula MD5(appId+extend+timestamp+shop_id+authUrl+mac+ssid+bssid+secretKey):
# the fields were concatenated by hand in that order and hashed with coreutils, not with this code:
#   echo -n 'wx0123EXT170000000000042http://10.0.0.1/aaa:bb:cc:dd:ee:ffShop11:22:33:44:55:66k3y' | md5sum
#   -> 4ca07a4bccbb89a4d457e6a3d8c3c6ed
#   (appId wx0123, extend EXT, timestamp 1700000000000, shop_id 42, authUrl http://10.0.0.1/a,
#    mac aa:bb:cc:dd:ee:ff, ssid Shop, bssid 11:22:33:44:55:66, secretKey k3y)
#   echo -n 'wxabc17000000001231234http://10.77.0.1:8080/wechat/authaa:bb:cc:00:11:22免费WiFi00:11:22:33:44:55s3cr3t'
#     | md5sum   (empty extend; the SSID is hashed as UTF-8)
#   -> 7b710c0d0aa9a5cd7d359cd88fa81814
WIFI_VECTORS = [
    (WifiSignInput("wx0123", "EXT", "1700000000000", "42", "http://10.0.0.1/a", "aa:bb:cc:dd:ee:ff", "Shop",
                   "11:22:33:44:55:66"), "k3y", "4ca07a4bccbb89a4d457e6a3d8c3c6ed"),
    (WifiSignInput("wxabc", "", "1700000000123", "1234", "http://10.77.0.1:8080/wechat/auth", "aa:bb:cc:00:11:22",
                   "免费WiFi", "00:11:22:33:44:55"), "s3cr3t", "7b710c0d0aa9a5cd7d359cd88fa81814"),
]


@pytest.mark.parametrize(("fields", "secret", "expected"), WIFI_VECTORS)
def test_wifi_sign_matches_hand_derived_vector(fields: WifiSignInput, secret: str, expected: str) -> None:
    assert wifi_sign(fields, secret) == expected
    assert verify_wifi_sign(fields, secret, expected.upper())


def test_wifi_sign_changes_with_every_field() -> None:
    fields, secret, expected = WIFI_VECTORS[0]
    assert not verify_wifi_sign(fields, "other", expected)
    import dataclasses

    for name in ("app_id", "extend", "timestamp", "shop_id", "auth_url", "mac", "ssid", "bssid"):
        changed = dataclasses.replace(fields, **{name: getattr(fields, name) + "x"})
        assert wifi_sign(changed, secret) != expected, name


# --- official-account push signature -------------------------------------------------------------------------------
# Documented: sort token, timestamp, nonce as strings (dictionary order), join, SHA1, hex.
#   token=Token timestamp=1234567890 nonce=abcdef: digits < upper case < lower case -> '1234567890Tokenabcdef'
#     echo -n '1234567890Tokenabcdef' | sha1sum -> 1088afafa644ce08de79476f35d7011dadc0dd3d
#   token=x timestamp=9 nonce=10: string order puts '10' before '9' (numeric order would not) -> '109x'
#     echo -n '109x' | sha1sum -> d2a0d52cf66a453cda6627020bb89b1195badce4
PUSH_VECTORS = [
    ("Token", "1234567890", "abcdef", "1088afafa644ce08de79476f35d7011dadc0dd3d"),
    ("x", "9", "10", "d2a0d52cf66a453cda6627020bb89b1195badce4"),
]


@pytest.mark.parametrize(("token", "timestamp", "nonce", "expected"), PUSH_VECTORS)
def test_push_signature_matches_hand_derived_vector(token: str, timestamp: str, nonce: str, expected: str) -> None:
    assert push_signature(token, timestamp, nonce) == expected
    assert verify_push(token, timestamp, nonce, expected)


def test_push_signature_rejects_wrong_token_and_empty_token() -> None:
    assert not verify_push("Token2", "1234567890", "abcdef", PUSH_VECTORS[0][3])
    assert not verify_push("", "1", "2", push_signature("", "1", "2"))


# --- extend token --------------------------------------------------------------------------------------------------
KEY = b"k" * 32
MAC, IP = "aa:bb:cc:dd:ee:01", "10.77.0.23"
STORES = frozenset({"s1"})


def textend(now: float = 1000.0, ttl: int = 300, store: str = "s1", nonce: bytes = b"n" * 12,
            choices: frozenset[str] = frozenset({"terms", "analytics"})) -> str:
    return ext.issue(KEY, store_id=store, mac=MAC, ip=IP, now=now, ttl_s=ttl, nonce=nonce, choices=choices)


def test_extend_roundtrip_is_url_safe() -> None:
    token = textend()
    assert all(c.isalnum() or c in "-_." for c in token)
    claims = ext.verify(KEY, token, mac=MAC, ip=IP, now=1299.0, stores=STORES)
    assert claims == ext.ExtendClaims("s1", 1300, ext._b64(b"n" * 12), frozenset({"terms", "analytics"}))


@pytest.mark.parametrize(
    ("mutate", "kw", "reason"),
    [
        (lambda t: t, {"mac": "aa:bb:cc:dd:ee:02"}, "forged"),  # another phone presents it
        (lambda t: t, {"ip": "10.77.0.24"}, "forged"),
        (lambda t: t, {"key": b"x" * 32}, "forged"),
        (lambda t: t.replace(".1300.", ".9999."), {}, "forged"),  # expiry pushed out
        (lambda t: t.replace("1.s1.", "1.s2."), {"stores": frozenset({"s1", "s2"})}, "forged"),
        (lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), {}, "forged"),
        (lambda t: t.replace(".5.", ".15."), {}, "forged"),  # consents ticked afterwards
        (lambda t: t, {"now": 1300.0}, "expired"),
        (lambda t: t, {"stores": frozenset({"s2"})}, "unknown-store"),
        (lambda t: "garbage", {}, "malformed"),
        (lambda t: "2" + t[1:], {}, "malformed"),
        (lambda t: t + ".x", {}, "malformed"),
        (lambda t: t.replace(".1300.", ".13x0."), {}, "malformed"),
        (lambda t: t.replace(".5.", ".x."), {}, "malformed"),
        # digits str.isdigit takes and int() refuses: a rejection, not a 500
        (lambda t: t.replace(".1300.", ".13\u00b2."), {}, "malformed"),
        (lambda t: t.replace(".5.", ".\u0665."), {}, "malformed"),
    ],
)
def test_extend_rejections(mutate: object, kw: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"key": KEY, "mac": MAC, "ip": IP, "now": 1000.0, "stores": STORES} | kw
    token = mutate(textend())  # type: ignore[operator]
    with pytest.raises(ext.ExtendRejected) as info:
        ext.verify(args.pop("key"), token, **args)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_extend_mac_case_does_not_matter_and_nonces_differ() -> None:
    token = textend()
    assert ext.verify(KEY, token, mac=MAC.upper(), ip=IP, now=1000.0, stores=STORES).store_id == "s1"
    assert textend(nonce=b"a" * 12) != textend(nonce=b"b" * 12)
    with pytest.raises(ValueError):
        textend(nonce=b"short")
    with pytest.raises(ValueError):
        textend(choices=frozenset({"marketing"}))  # no token without the access terms


# --- temporary release ---------------------------------------------------------------------------------------------
POLICY = ReleasePolicy(seconds=60, per_hour=3)


def test_first_release_is_granted_for_release_seconds() -> None:
    d = decide(POLICY, mac=MAC, ip=IP, now=1000.0, history=[], online=False)
    assert (d.granted, d.record, d.until) == (True, True, 1060.0)
    assert d.commands == (ReleaseTemporarily(MAC, IP, 1060.0),)


def test_asking_again_while_released_never_extends() -> None:
    d = decide(POLICY, mac=MAC, ip=IP, now=1050.0, history=[1000.0], online=False)
    assert (d.granted, d.record, d.until) == (True, False, 1060.0)


def test_at_most_per_hour_releases_in_a_sliding_hour() -> None:
    history = [1000.0, 1100.0, 1200.0]
    refused = decide(POLICY, mac=MAC, ip=IP, now=1300.0, history=history, online=False)
    assert (refused.granted, refused.commands, refused.reason) == (False, (), "rate-limited")
    assert refused.retry_after == 1000.0 + 3600 - 1300.0
    later = decide(POLICY, mac=MAC, ip=IP, now=4601.0, history=history, online=False)
    assert later.granted and later.until == 4661.0


def test_reconnecting_many_times_yields_bounded_release_time() -> None:
    """apfree #215: a device that keeps asking gets at most per_hour * seconds of walled-garden access an hour."""
    history: list[float] = []
    released_until = 0.0
    total = 0.0
    for t in range(0, 3600, 5):
        d = decide(POLICY, mac=MAC, ip=IP, now=float(t), history=history, online=False)
        if d.record:
            history.append(float(t))
        if d.granted:
            total += min(d.until, t + 5.0) - max(released_until, float(t)) if d.until > t else 0.0
            released_until = max(released_until, min(d.until, t + 5.0))
    assert len(history) == 3
    assert total <= 3 * 60


def test_online_device_gets_no_release() -> None:
    d = decide(POLICY, mac=MAC, ip=IP, now=1000.0, history=[], online=True)
    assert (d.granted, d.commands, d.reason) == (False, (), "online")


# --- official-account pushes ---------------------------------------------------------------------------------------
SUBSCRIBE = (b"<xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[oABC]]></FromUserName>"
             b"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
             b"<Event><![CDATA[subscribe]]></Event></xml>")


def test_parse_subscribe_push() -> None:
    assert parse_push(SUBSCRIBE) == Push("gh_123", "oABC", 1700000000, "event", "subscribe")


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><CreateTime>1</CreateTime></xml>',
    b"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[abc]]></Encrypt><CreateTime>1</CreateTime></xml>",
    b"<xml><ToUserName>gh</ToUserName></xml>",
    b"<notxml><CreateTime>1</CreateTime></notxml>",
    b"<xml><CreateTime>1</CreateTime>",
    b"<xml>" + b" " * 70000 + b"<CreateTime>1</CreateTime></xml>",
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><CreateTime>1</CreateTime>'
    "<FromUserName>&a;</FromUserName></xml>".encode("utf-16"),
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml><xml><CreateTime>1</CreateTime></xml>'.encode("utf-16"),
    "<xml><CreateTime>\u00b2</CreateTime></xml>".encode(),
    "<xml><CreateTime>1\u00b2</CreateTime></xml>".encode(),
])
def test_unreadable_pushes_are_refused(body: bytes) -> None:
    with pytest.raises(BadPush):
        parse_push(body)


@pytest.mark.parametrize(("timestamp", "ok"), [("1000", True), ("700", True), ("699", False), ("1301", False),
                                               ("", False), ("-5", False), ("\u00b2", False), ("1" * 5000, False),
                                               ("100\u00b2", False)])
def test_push_freshness(timestamp: str, ok: bool) -> None:
    assert fresh(timestamp, 1000.0) is ok
