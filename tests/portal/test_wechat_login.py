"""The WeChat blueprint in the real portal app (MemoryGate, SQLite), driven against the FAKE WeChat over real HTTP.

The phone is the Flask test client with a LAN source address; the neighbour table is injected (ip → MAC). The fake
runs on a free loopback port: its JSONP step checks keliu's sign, and its stand-in for the WeChat app hands back the
authUrl call, which the "phone" then makes, as the WeChat app does.
"""
from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from keliu.gate import AllowClient, MemoryGate, ReleaseTemporarily
from keliu.testing.wechat_fake import FakeAccounts, FakeServer, openid_for, push_body, send_push, unionid_for
from portal.wechat.sign import push_signature
from tests.portal.conftest import every_row

ACC = FakeAccounts()
PUBLIC = "http://portal.test"
PHONE_IP, PHONE_MAC = "10.77.0.23", "aa:bb:cc:00:00:23"
OTHER_IP, OTHER_MAC = "10.77.0.24", "aa:bb:cc:00:00:24"
WECHAT_UA = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50"
MP_TOKEN = "mp-token-for-tests"


class Clock:
    def __init__(self) -> None:
        # real time: the FAKE WeChat, like WeChat, refuses a hand-off whose ms timestamp is off by minutes
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


class Sms:
    """Records codes instead of sending them (the portal's SMS backend interface)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, code: str, lang: str) -> None:
        self.sent.append((phone, code))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def wechat_cfg(fake_url: str) -> dict[str, Any]:
    return {"enabled": True, "app_id": ACC.wifi_app_id, "shop_id": ACC.shop_id, "secret_key": ACC.secret_key,
            "ssid": "免费WiFi", "bssid": "02:00:00:00:00:01", "release_seconds": 60, "releases_per_hour": 3,
            "oauth_app_id": ACC.oauth_app_id, "oauth_secret": ACC.oauth_secret, "token": MP_TOKEN,
            "open_base": fake_url, "api_base": fake_url,
            "wifi_js_url": fake_url + "/resources/js/wechatticket/wechatutil.js"}


class Env:
    def __init__(self, tmp: Path, fake: FakeServer, store: str = "demo-store", var: Path | None = None,
                 oauth: tuple[str, str] = (ACC.oauth_app_id, ACC.oauth_secret), db_url: str | None = None) -> None:
        from portal.app import create_app, start_up

        self.gate = MemoryGate()
        self.clock = Clock()
        self.sms = Sms()
        self.neigh = {PHONE_IP: PHONE_MAC, OTHER_IP: OTHER_MAC}
        self.app = create_app({
            "KELIU": {"database_url": db_url or f"sqlite:///{tmp / 'keliu.db'}", "var_dir": str(var or tmp / "var"),
                      "stores": [{"id": "demo-store", "mall": "demo-mall"}, {"id": "other", "mall": "demo-mall"}],
                      "portal": {"public_url": PUBLIC, "store": store},
                      "wechat": wechat_cfg(fake.url) | {"oauth_app_id": oauth[0], "oauth_secret": oauth[1]}},
            "GATE": self.gate, "CLOCK": self.clock, "SMS": self.sms, "NEIGHBOURS": self.neigh.get,
            "TESTING": True, "WTF_CSRF_ENABLED": False,
        })
        start_up(self.app)
        self.engine = self.app.extensions["keliu"].engine

    def phone(self, ip: str = PHONE_IP) -> Any:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = ip
        return client

    def rows(self, table: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT * FROM {table}")))


@pytest.fixture
def env(tmp_path: Path, fake: FakeServer, migrated_sqlite_template: Path) -> Env:
    """The portal on a copy of the migrated SQLite template (Env's database file: start_up finds it at heads)."""
    shutil.copy(migrated_sqlite_template, tmp_path / "keliu.db")
    return Env(tmp_path, fake)


def start(env: Env, ip: str = PHONE_IP, **form: str) -> dict[str, str]:
    resp = env.phone(ip).post("/wechat/start", data={"terms": "1", **form})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    html = resp.get_data(as_text=True)
    m = re.search(r'<script type="application/json" id="keliu-wechat">(\{.*?\})</script>', html)
    assert m is not None
    # WeChat's script (and its JSONP step, same host) may run on this page, nothing else from elsewhere
    fake_origin = env.app.extensions["keliu"].cfg.wechat.wifi_js_url.split("/resources/")[0]
    assert f"script-src 'self' {fake_origin};" in resp.headers["Content-Security-Policy"]
    return json.loads(m.group(1))


def handoff(fake: FakeServer, params: dict[str, str]) -> str:
    """What the page's JS and the WeChat app do: the JSONP step, then the app's authUrl call (returned as a path)."""
    body = requests.get(fake.url + "/operator/callWechat.xhtml", params=params, timeout=5).text
    assert '"success": true' in body, body
    connect = json.loads(body[body.index("(") + 1: body.rindex(")")])["data"]
    resp = requests.get(connect, allow_redirects=False, timeout=5)
    assert resp.status_code == 302
    url = urllib.parse.urlsplit(resp.headers["Location"])
    assert f"{url.scheme}://{url.netloc}" == PUBLIC
    return f"{url.path}?{url.query}"


# --- 微信连Wi-Fi -------------------------------------------------------------------------------------------------


def test_page_offers_wechat_login_labelled_fake(env: Env) -> None:
    html = env.phone().get("/wechat/").get_data(as_text=True)
    assert 'id="wechat-login"' in html and "FAKE WeChat" in html and 'name="terms"' in html


def test_splash_links_to_wechat_login_only_when_enabled(env: Env, tmp_path: Path) -> None:
    html = env.phone().get("/?lang=zh-CN").get_data(as_text=True)
    assert 'id="wechat"' in html and 'href="/wechat/?lang=zh-CN"' in html and "微信连Wi-Fi" in html
    from portal.app import create_app, start_up

    plain = create_app({"KELIU": {"database_url": f"sqlite:///{tmp_path / 'plain.db'}",
                                  "var_dir": str(tmp_path / "plain-var"),
                                  "stores": [{"id": "demo-store", "mall": "demo-mall"}],
                                  "portal": {"public_url": PUBLIC, "store": "demo-store"}},
                        "GATE": MemoryGate(), "CLOCK": Clock(), "SMS": Sms(), "NEIGHBOURS": {PHONE_IP: PHONE_MAC}.get,
                        "TESTING": True})
    start_up(plain)
    client = plain.test_client()
    client.environ_base["REMOTE_ADDR"] = PHONE_IP
    page = client.get("/")
    assert page.status_code == 200 and 'id="login"' in page.get_data(as_text=True)
    assert 'id="wechat"' not in page.get_data(as_text=True) and "/wechat/" not in page.get_data(as_text=True)
    assert client.get("/wechat/").status_code == 404


def test_start_releases_walled_garden_and_signs_handoff(env: Env) -> None:
    params = start(env)
    assert env.gate.released == {PHONE_MAC: ReleaseTemporarily(PHONE_MAC, PHONE_IP, env.clock.t + 60)}
    assert env.gate.allowed == {}
    assert params["timestamp"] == str(int(env.clock.t * 1000))  # milliseconds
    assert params["authUrl"] == PUBLIC + "/wechat/auth" and params["mac"] == PHONE_MAC
    assert ACC.secret_key not in json.dumps(params)


def test_start_without_terms_opens_nothing(env: Env) -> None:
    resp = env.phone().post("/wechat/start", data={})
    assert resp.status_code == 400 and env.gate.log == []


def test_full_handoff_gets_phone_online_once(env: Env, fake: FakeServer) -> None:
    params = start(env, marketing="1")
    auth_path = handoff(fake, params)
    resp = env.phone().get(auth_path)
    assert resp.status_code == 200 and 'id="wechat-online"' in resp.get_data(as_text=True)
    assert list(env.gate.allowed) == [PHONE_MAC] and env.gate.released == {}
    allowed = env.gate.allowed[PHONE_MAC]
    assert allowed.ip == PHONE_IP and allowed.until > env.clock.t
    logins = env.rows("logins")
    assert [(r.method, r.ip) for r in logins] == [("wechat", PHONE_IP)]
    member = env.rows("members")[0]
    assert member.wechat_openid == openid_for(ACC.wifi_app_id, PHONE_MAC) and member.phone_e164 is None
    consents = {r.kind: bool(r.granted) for r in env.rows("consents")}
    assert consents == {"terms": True, "marketing": True, "analytics": False, "reauth": False}

    # the same callback again (a replay) changes nothing
    log_before = list(env.gate.log)
    assert env.phone().get(auth_path).status_code == 403
    assert env.gate.log == log_before and len(env.rows("logins")) == 1


def test_second_wechat_login_maps_to_the_same_member(env: Env, fake: FakeServer) -> None:
    for _ in range(2):
        env.phone().get(handoff(fake, start(env)))
        env.gate.allowed.clear()
        with env.engine.begin() as conn:
            conn.execute(sa.text("UPDATE portal_sessions SET ended_at = until"))
        env.clock.t += 120
    assert len(env.rows("members")) == 1 and len(env.rows("logins")) == 2


def wechat_logins(env: Env, fake: FakeServer, t0: float) -> tuple[list[int], Any]:
    """A phone logs in through 微信连Wi-Fi agreeing to analytics and re-authorization, its callback is replayed,
    another phone logs in agreeing to marketing; every row of every table after."""
    env.clock.t = t0
    first = handoff(fake, start(env, analytics="1", reauth="1"))
    codes = [env.phone().get(first).status_code, env.phone().get(first).status_code]
    env.clock.t += 5
    codes.append(env.phone(OTHER_IP).get(handoff(fake, start(env, OTHER_IP, marketing="1"))).status_code)
    url = str(env.engine.url.render_as_string(hide_password=False))
    env.engine.dispose()  # before PostgreSQL's database is dropped
    return codes, every_row(url, {"wechat_extend_used": {"nonce"}, "admin_users": {"password_hash"}})


@pytest.mark.integration
def test_wechat_logins_store_the_same_rows_on_postgresql(tmp_path: Path, fake: FakeServer, migrated_postgres_url: str) -> None:
    """On PostgreSQL the login is one statement (``portal.store.login_store.execute_pg``), on SQLite statement by
    statement: every column of every table the same (the token's nonce is a random draw)."""
    t0 = Clock().t
    codes, portable = wechat_logins(Env(tmp_path, fake, var=tmp_path / "var"), fake, t0)
    assert codes == [200, 403, 200]
    assert len(portable["logins"]) == 2 and len(portable["sensor_device_registry"]) == 1
    one_statement = wechat_logins(Env(tmp_path, fake, var=tmp_path / "var", db_url=migrated_postgres_url), fake, t0)
    assert one_statement == (codes, portable)


@pytest.mark.parametrize("attack", ["forged", "other-phone", "expired", "no-extend", "bad-openid"])
def test_bad_callbacks_open_nothing(env: Env, fake: FakeServer, attack: str, caplog: pytest.LogCaptureFixture) -> None:
    auth_path = handoff(fake, start(env))
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(auth_path).query))
    ip = PHONE_IP
    if attack == "forged":
        q["extend"] = q["extend"][:-3] + ("AAA" if not q["extend"].endswith("AAA") else "BBB")
    elif attack == "other-phone":
        ip = OTHER_IP
    elif attack == "expired":
        env.clock.t += 301
    elif attack == "no-extend":
        del q["extend"]
    else:
        q["openId"] = "<script>"
    log_before = list(env.gate.log)
    with caplog.at_level("WARNING", logger="keliu.wechat"):
        resp = env.phone(ip).get("/wechat/auth?" + urllib.parse.urlencode(q))
    assert resp.status_code == 403
    assert env.gate.log == log_before and env.gate.allowed == {}
    assert env.rows("logins") == []
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("keliu"))
    assert "wechat authUrl rejected" in ours
    assert PHONE_MAC not in ours and OTHER_MAC not in ours and q.get("openId", "x") not in ours


def test_extend_lives_only_as_long_as_the_release(env: Env, fake: FakeServer) -> None:
    """Asked 30 s into a 60 s release, the token ends with the release plus the 30 s grace: 60 s later."""
    start(env)
    env.clock.t += 30
    auth_path = handoff(fake, start(env))
    env.clock.t += 60
    assert env.phone().get(auth_path).status_code == 403 and env.gate.allowed == {}
    env.clock.t -= 1
    assert env.phone().get(auth_path).status_code == 200 and list(env.gate.allowed) == [PHONE_MAC]


def test_unknown_store_is_rejected(tmp_path: Path, fake: FakeServer) -> None:
    """A token issued by one store's portal is refused by another's, even with the same keys."""
    first = Env(tmp_path / "a", fake, store="demo-store", var=tmp_path / "var")
    auth_path = handoff(fake, start(first))
    second = Env(tmp_path / "b", fake, store="other", var=tmp_path / "var")
    assert second.phone().get(auth_path).status_code == 403
    assert second.gate.log == [] and second.rows("logins") == []


def test_release_is_bounded_per_device_per_hour(env: Env) -> None:
    for _ in range(3):
        start(env)
        env.clock.t += 61
    resp = env.phone().post("/wechat/start", data={"terms": "1"})
    assert resp.status_code == 429
    assert len([c for c in env.gate.log if isinstance(c, ReleaseTemporarily)]) == 3
    env.clock.t += 3600
    start(env)


def test_asking_again_during_a_release_does_not_extend_it(env: Env) -> None:
    start(env)
    env.clock.t += 30
    start(env)
    until = {c.until for c in env.gate.log if isinstance(c, ReleaseTemporarily)}
    assert until == {env.clock.t - 30 + 60}
    assert len(env.rows("wechat_releases")) == 1


def test_online_device_gets_no_release(env: Env, fake: FakeServer) -> None:
    env.phone().get(handoff(fake, start(env)))
    resp = env.phone().post("/wechat/start", data={"terms": "1"})
    assert resp.status_code == 302
    assert [type(c) for c in env.gate.log] == [ReleaseTemporarily, AllowClient]


# --- 网页授权 ------------------------------------------------------------------------------------------------------


def wechat_browser(env: Env, fake: FakeServer, path: str, client: Any = None, user: str = "alice") -> tuple[Any, Any]:
    """Follow redirects across the portal (test client) and the fake (real HTTP), like WeChat's browser."""
    client = client or env.phone("203.0.113.9")
    resp = client.get(path, headers={"User-Agent": WECHAT_UA})
    for _ in range(6):
        if resp.status_code not in (302, 303):
            break
        loc = resp.headers["Location"]
        if loc.startswith(fake.url):
            r = requests.get(loc, headers={"User-Agent": WECHAT_UA}, cookies={"fake_wechat_user": user},
                             allow_redirects=False, timeout=5)
            assert r.status_code == 302, r.text
            loc = r.headers["Location"]
        loc = loc.removeprefix(PUBLIC)
        resp = client.get(loc, headers={"User-Agent": WECHAT_UA})
    return client, resp


def test_authorize_redirect_has_wechat_form(env: Env, fake: FakeServer) -> None:
    resp = env.phone().get("/wechat/oauth?scope=snsapi_base&next=/wechat/member")
    loc = resp.headers["Location"]
    assert loc.startswith(fake.url + "/connect/oauth2/authorize?appid=" + ACC.oauth_app_id + "&redirect_uri=")
    assert loc.endswith("#wechat_redirect") and "&scope=snsapi_base&state=" in loc


def test_base_scope_then_bind_phone_by_sms_once(env: Env, fake: FakeServer) -> None:
    client, resp = wechat_browser(env, fake, "/wechat/member")
    assert resp.request.path == "/wechat/bind"
    r = client.post("/wechat/bind", data={"phone": "13800138000", "action": "code"})
    assert r.status_code == 200 and env.sms.sent[-1][0] == "+8613800138000"
    r = client.post("/wechat/bind", data={"phone": "13800138000", "action": "bind", "code": "000000"
                                          if env.sms.sent[-1][1] != "000000" else "111111"})
    assert r.status_code == 400
    r = client.post("/wechat/bind", data={"phone": "13800138000", "action": "bind", "code": env.sms.sent[-1][1],
                                          "next": "/wechat/member"})
    assert r.status_code == 303
    card = client.get("/wechat/member").get_data(as_text=True)
    assert 'id="member-card"' in card and "13800138000" not in card and "8000" in card
    ident = env.rows("wechat_identities")[0]
    member = env.rows("members")[0]
    assert ident.openid == openid_for(ACC.oauth_app_id, "alice") and ident.member_id == member.id
    assert member.phone_e164 == "+8613800138000"
    # a second binding to another phone is refused: binding happens once
    client.post("/wechat/bind", data={"phone": "13900139000", "action": "code"})
    r = client.post("/wechat/bind", data={"phone": "13900139000", "action": "bind", "code": env.sms.sent[-1][1]})
    assert r.status_code == 409
    assert env.rows("wechat_identities")[0].member_id == member.id
    assert env.gate.log == []  # member pages never touch the network gate


def test_userinfo_scope_stores_profile_and_unionid_unifies(env: Env, fake: FakeServer) -> None:
    # bob agrees on our page to share his profile, so keliu asks WeChat for snsapi_userinfo
    client = env.phone("203.0.113.9")
    r = client.post("/wechat/oauth", data={"share": "1", "next": "/wechat/member"})
    assert "scope=snsapi_userinfo" in r.headers["Location"]
    r2 = requests.get(r.headers["Location"], headers={"User-Agent": WECHAT_UA}, cookies={"fake_wechat_user": "bob"},
                      allow_redirects=False, timeout=5)
    _c, resp = wechat_browser(env, fake, r2.headers["Location"][len(PUBLIC):], client=client, user="bob")
    assert resp.request.path == "/wechat/bind"
    ident = env.rows("wechat_identities")[0]
    assert ident.nickname == "bob (FAKE)" and ident.unionid == unionid_for(ACC.open_platform, "bob")
    client.post("/wechat/bind", data={"phone": "13700137000", "action": "code"})
    client.post("/wechat/bind", data={"phone": "13700137000", "action": "bind", "code": env.sms.sent[-1][1]})
    member_id = env.rows("members")[0].id
    # a brand's account under the same Open Platform sees the same unionid: the same member, no SMS again
    from portal.wechat import models as wm
    from portal.wechat import store as wechat_store

    now = env.app.extensions["keliu"].now()
    unionid = unionid_for(ACC.open_platform, "bob")
    with env.engine.begin() as conn:
        brand = wm.upsert_identity(conn, "wxBRAND", openid_for("wxBRAND", "bob"), now, unionid=unionid)
        assert wechat_store.member_for_oauth(conn, identity_id=brand, unionid=unionid, now=now) == member_id
        stranger = wm.upsert_identity(conn, "wxBRAND", openid_for("wxBRAND", "eve"), now,
                                      unionid=unionid_for(ACC.open_platform, "eve"))
        assert wechat_store.member_for_oauth(conn, identity_id=stranger, unionid=unionid_for(ACC.open_platform, "eve"),
                                             now=now) is None
    assert len(env.rows("members")) == 1


def test_declining_to_share_uses_the_silent_scope(env: Env) -> None:
    r = env.phone().post("/wechat/oauth", data={"next": "/wechat/member"})
    assert "scope=snsapi_base" in r.headers["Location"]


def test_same_account_wifi_member_is_asked_for_the_phone_once(tmp_path: Path) -> None:
    """When 连Wi-Fi and 网页授权 use one service account, the 网页授权 openid is the 连Wi-Fi one: the WeChat-only
    member made at the hand-off is completed with the phone (SMS once), and keeps a single identity."""
    same = FakeAccounts(oauth_app_id=ACC.wifi_app_id, oauth_secret="same-account-secret")
    with FakeServer(accounts=same) as fake:
        env = Env(tmp_path, fake, oauth=(same.oauth_app_id, same.oauth_secret))
        env.phone().get(handoff(fake, start(env)))
        assert env.rows("members")[0].phone_e164 is None
        client, resp = wechat_browser(env, fake, "/wechat/member", user=PHONE_MAC)
        assert resp.request.path == "/wechat/bind"
        client.post("/wechat/bind", data={"phone": "13600136000", "action": "code"})
        r = client.post("/wechat/bind", data={"phone": "13600136000", "action": "bind",
                                              "code": env.sms.sent[-1][1], "next": "/wechat/member"})
        assert r.status_code == 303
        assert 'id="member-card"' in client.get("/wechat/member").get_data(as_text=True)
        idents = env.rows("wechat_identities")
        phone_member = [m.id for m in env.rows("members") if m.phone_e164 == "+8613600136000"]
        assert len(idents) == 1 and [idents[0].member_id] == phone_member


def test_state_is_checked(env: Env, fake: FakeServer) -> None:
    client = env.phone("203.0.113.9")
    client.get("/wechat/oauth?scope=snsapi_base")
    assert client.get("/wechat/oauth/callback?code=x&state=not-the-state").status_code == 400
    assert client.get("/wechat/oauth/callback?code=x&state=").status_code == 400
    assert env.rows("wechat_identities") == []


def test_errcode_from_wechat_is_a_clean_failure(env: Env, fake: FakeServer) -> None:
    requests.post(fake.url + "/fake/control", json={"fail": {"access_token": [40163, "code been used"]}}, timeout=5)
    _client, resp = wechat_browser(env, fake, "/wechat/oauth?scope=snsapi_base")
    assert resp.status_code == 502 and "40163" in resp.get_data(as_text=True)
    assert env.rows("wechat_identities") == []


def test_next_is_never_an_open_redirect(env: Env, fake: FakeServer) -> None:
    env.phone().get("/wechat/oauth?scope=snsapi_base&next=//evil.example/x")
    client = env.phone()
    client.get("/wechat/oauth?scope=snsapi_base&next=https://evil.example/")
    with client.session_transaction() as s:
        assert s["wechat_oauth"]["next"] == "/wechat/member"


# --- official account ---------------------------------------------------------------------------------------------


def push(env: Env, event: str, openid: str, *, now: int | None = None, signature: str | None = None,
         nonce: str = "12345") -> Any:
    ts = str(now if now is not None else int(time.time()))
    sig = signature if signature is not None else push_signature(MP_TOKEN, ts, nonce)
    return env.phone("198.51.100.7").post(f"/wechat/mp?signature={sig}&timestamp={ts}&nonce={nonce}",
                                          data=push_body("gh_fake_account", openid, event, int(ts)),
                                          content_type="text/xml")


def echo(env: Env, ts: int, signature: str | None = None) -> Any:
    sig = signature if signature is not None else push_signature(MP_TOKEN, str(ts), "n1")
    return env.phone().get(f"/wechat/mp?signature={sig}&timestamp={ts}&nonce=n1&echostr=hello123")


def test_official_account_url_verification(env: Env) -> None:
    now = int(env.clock.t)
    ok = echo(env, now)
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "hello123"
    bad = echo(env, now, signature="00")
    assert bad.status_code == 403 and "hello123" not in bad.get_data(as_text=True)


@pytest.mark.parametrize("skew", [-301, 301, -1_000_000])
def test_url_verification_with_a_stale_timestamp_is_refused(env: Env, skew: int) -> None:
    """Attack review #12: a captured (or old, leaked) signed echo request was answered whatever its age."""
    stale = echo(env, int(env.clock.t) + skew)
    assert stale.status_code == 403 and "hello123" not in stale.get_data(as_text=True)
    assert echo(env, int(env.clock.t) + skew // abs(skew) * 300).status_code == 200  # the edge of the window


def test_push_freshness_follows_the_app_clock(env: Env) -> None:
    """The window is judged by the injected clock, not the host's: an hour ahead, a push signed now is stale."""
    env.clock.t += 3600
    assert push(env, "subscribe", "oX").status_code == 403
    assert echo(env, int(time.time())).status_code == 403
    assert push(env, "subscribe", "oX", now=int(env.clock.t)).status_code == 200
    assert [r.openid for r in env.rows("wechat_follows")] == ["oX"]


def test_utf16_push_with_an_internal_entity_is_refused_and_not_stored(env: Env) -> None:
    """Attack review #12: the "no DTD" byte check did not see ``<!DOCTYPE`` in UTF-16, so an entity was expanded."""
    ts = str(int(env.clock.t))
    xml = ('<?xml version="1.0" encoding="UTF-16"?>'
           '<!DOCTYPE xml [<!ENTITY who "oEntityExpanded">]>'
           f"<xml><ToUserName>gh_fake_account</ToUserName><FromUserName>&who;</FromUserName>"
           f"<CreateTime>{ts}</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>")
    sig = push_signature(MP_TOKEN, ts, "777")
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        body = xml.encode(encoding)
        if encoding != "utf-16":
            body = "\ufeff".encode(encoding) + body
        resp = env.phone("198.51.100.7").post(f"/wechat/mp?signature={sig}&timestamp={ts}&nonce=777", data=body,
                                              content_type="text/xml")
        assert resp.status_code == 400, encoding
    assert env.rows("wechat_follows") == []


def test_subscribe_events_recorded_against_member(env: Env, fake: FakeServer) -> None:
    env.phone().get(handoff(fake, start(env)))  # the 连Wi-Fi login made a member with this openid
    openid = openid_for(ACC.wifi_app_id, PHONE_MAC)
    member_id = env.rows("members")[0].id
    now = int(time.time())  # WeChat's retry carries the first push's CreateTime, even a second later
    assert push(env, "subscribe", openid, now=now).get_data(as_text=True) == "success"
    assert push(env, "subscribe", openid, now=now, nonce="999").status_code == 200  # WeChat's retry: recorded once
    rows = env.rows("wechat_follows")
    assert [(r.event, r.member_id) for r in rows] == [("subscribe", member_id)]
    push(env, "unsubscribe", openid, now=now + 1)
    assert [r.event for r in env.rows("wechat_follows")] == ["subscribe", "unsubscribe"]


def test_bad_or_stale_push_is_rejected_and_not_recorded(env: Env) -> None:
    assert push(env, "subscribe", "oX", signature="0" * 40).status_code == 403
    assert push(env, "subscribe", "oX", now=1_000_000).status_code == 403  # signed, but far too old
    assert env.rows("wechat_follows") == []


def test_fake_send_push_over_real_http_needs_a_server(fake: FakeServer) -> None:
    """send_push is what the E2E uses against a portal on a socket; here it reaches the fake, which has no /mp."""
    assert send_push(fake.url + "/wechat/mp", MP_TOKEN, to_user="gh", from_user="o", event="subscribe",
                     now=1).status_code == 404


def test_wechat_pages_are_absent_until_configured(tmp_path: Path) -> None:
    from portal.app import create_app, start_up

    app = create_app({"KELIU": {"database_url": f"sqlite:///{tmp_path / 'k.db'}", "var_dir": str(tmp_path / "var"),
                                "wechat": {"enabled": True}},
                      "GATE": MemoryGate(), "NEIGHBOURS": {PHONE_IP: PHONE_MAC}.get, "TESTING": True,
                      "WTF_CSRF_ENABLED": False})
    start_up(app)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PHONE_IP
    assert client.get("/wechat/").status_code == 404
    assert client.post("/wechat/start", data={"terms": "1"}).status_code == 404
    assert client.get("/wechat/auth?extend=x&openId=y&tid=z").status_code == 404
    assert client.get("/wechat/oauth").status_code == 404
    assert app.extensions["keliu"].gate.log == []


def test_wechat_login_shows_the_welcome_coupon_above_the_link_on(env: Env, fake: FakeServer) -> None:
    from marketing.core.offers import OfferSpec
    from marketing.store import coupons

    svc = env.app.extensions["keliu"]
    with env.engine.begin() as conn:
        coupons.create_offer(conn, OfferSpec(title="WiFi welcome", kind="amount_off", value=1000,
                                             stores=("demo-store",), min_spend_cents=5000, valid_days=7,
                                             on_login=True), store_id="demo-store", now=svc.now(), created_by="t")
    phone = env.phone()
    phone.get("/some/page", headers={"Host": "example.com"})  # the landing URL, kept for after the login
    html = env.phone().get(handoff(fake, start(env, marketing="1"))).get_data(as_text=True)
    [code] = [r.code for r in env.rows("coupons")]
    assert 'id="coupon-1"' in html and "WiFi welcome" in html and code[:4] in html
    assert html.index('id="coupon-1"') < html.index('href="http://example.com/some/page"')
    # another phone, no marketing consent: online, no coupon, nothing issued
    other = env.phone(OTHER_IP).get(handoff(fake, start(env, ip=OTHER_IP))).get_data(as_text=True)
    assert 'id="wechat-online"' in other and 'id="coupon-1"' not in other and len(env.rows("coupons")) == 1
