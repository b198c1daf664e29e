"""keliu's WeChat clients against the FAKE WeChat server over real HTTP on a loopback port."""
from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator

import pytest
import requests

from keliu.testing.wechat_fake import FakeAccounts, FakeServer, openid_for, unionid_for
from portal.wechat.oauth import WechatApiError, WechatOAuth, authorize_url
from portal.wechat.sign import WifiSignInput, wifi_sign

ACC = FakeAccounts()
WECHAT_UA = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def code_for(fake: FakeServer, scope: str, user: str = "alice") -> str:
    url = authorize_url(fake.url, ACC.oauth_app_id, "http://portal.test/cb?x=1", scope, "st8")  # type: ignore[arg-type]
    resp = requests.get(url, headers={"User-Agent": WECHAT_UA}, cookies={"fake_wechat_user": user},
                        allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)
    assert q["state"] == ["st8"] and q["x"] == ["1"]
    return q["code"][0]


def test_authorize_url_has_wechat_names_order_and_fragment() -> None:
    url = authorize_url("https://open.weixin.qq.com", "wxAPP", "https://m.shop.cn/wechat/cb?a=b", "snsapi_base",
                        "S1")
    assert url == ("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxAPP"
                   "&redirect_uri=https%3A%2F%2Fm.shop.cn%2Fwechat%2Fcb%3Fa%3Db&response_type=code"
                   "&scope=snsapi_base&state=S1#wechat_redirect")


def test_authorize_outside_wechat_is_refused_like_wechat(fake: FakeServer) -> None:
    url = authorize_url(fake.url, ACC.oauth_app_id, "http://portal.test/cb", "snsapi_base", "s")
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 200 and "请在微信客户端打开链接" in resp.text and "FAKE" in resp.headers["X-Fake"]


def test_base_scope_gives_openid_only(fake: FakeServer) -> None:
    client = WechatOAuth(fake.url, ACC.oauth_app_id, ACC.oauth_secret)
    token = client.exchange(code_for(fake, "snsapi_base"))
    assert (token.openid, token.scope, token.unionid) == (openid_for(ACC.oauth_app_id, "alice"), "snsapi_base", None)
    with pytest.raises(WechatApiError) as info:
        client.profile(token)
    assert info.value.errcode == 48001
    assert "secret" not in repr(client) and ACC.oauth_secret not in repr(client)


def test_userinfo_scope_gives_profile_and_unionid(fake: FakeServer) -> None:
    client = WechatOAuth(fake.url, ACC.oauth_app_id, ACC.oauth_secret)
    token = client.exchange(code_for(fake, "snsapi_userinfo", user="bob"))
    profile = client.profile(token)
    assert profile.openid == openid_for(ACC.oauth_app_id, "bob")
    assert profile.unionid == unionid_for(ACC.open_platform, "bob") == token.unionid
    assert profile.nickname == "bob (FAKE)"


def test_code_is_single_use(fake: FakeServer) -> None:
    client = WechatOAuth(fake.url, ACC.oauth_app_id, ACC.oauth_secret)
    code = code_for(fake, "snsapi_base")
    client.exchange(code)
    with pytest.raises(WechatApiError) as info:
        client.exchange(code)
    assert info.value.errcode == 40029


def test_wrong_secret_is_an_errcode_and_never_echoed(fake: FakeServer) -> None:
    client = WechatOAuth(fake.url, ACC.oauth_app_id, "not-the-secret")
    with pytest.raises(WechatApiError) as info:
        client.exchange(code_for(fake, "snsapi_base"))
    assert info.value.errcode == 40125 and "not-the-secret" not in str(info.value)


def test_injected_errcode_failure(fake: FakeServer) -> None:
    requests.post(fake.url + "/fake/control", json={"fail": {"access_token": [-1, "system error"]}}, timeout=5)
    client = WechatOAuth(fake.url, ACC.oauth_app_id, ACC.oauth_secret)
    with pytest.raises(WechatApiError) as info:
        client.exchange(code_for(fake, "snsapi_base"))
    assert info.value.errcode == -1 and "system error" in info.value.errmsg


def test_unreachable_wechat_is_translated() -> None:
    client = WechatOAuth("http://127.0.0.1:9", ACC.oauth_app_id, ACC.oauth_secret)
    with pytest.raises(WechatApiError) as info:
        client.exchange("c")
    assert info.value.errcode == -1 and isinstance(info.value.__cause__, requests.RequestException)


def jsonp(fake: FakeServer, ts: str | None = None, **over: str) -> str:
    ts = ts or str(int(time.time() * 1000))
    fields = WifiSignInput(ACC.wifi_app_id, "EXT.1", ts, ACC.shop_id, "http://10.0.0.1:8080/wechat/auth",
                           "aa:bb:cc:dd:ee:ff", "免费WiFi", "00:11:22:33:44:55")
    params = {"appId": fields.app_id, "extend": fields.extend, "timestamp": ts,
              "sign": wifi_sign(fields, ACC.secret_key), "shopId": fields.shop_id, "authUrl": fields.auth_url,
              "mac": fields.mac, "ssid": fields.ssid, "bssid": fields.bssid} | over
    return requests.get(fake.url + "/operator/callWechat.xhtml", params=params, timeout=5).text


def test_wifi_jsonp_step_then_connect_calls_auth_url(fake: FakeServer) -> None:
    body = jsonp(fake)
    assert body.startswith('jsonpCallback({"success": true, "data": "')
    connect = body.split('"data": "')[1].split('"')[0]
    resp = requests.get(connect, allow_redirects=False, timeout=5)
    assert resp.status_code == 302
    target = urllib.parse.urlsplit(resp.headers["Location"])
    q = urllib.parse.parse_qs(target.query)
    assert target.netloc == "10.0.0.1:8080" and target.path == "/wechat/auth"
    assert q["extend"] == ["EXT.1"] and q["openId"] == [openid_for(ACC.wifi_app_id, "aa:bb:cc:dd:ee:ff")]
    assert len(q["tid"][0]) == 32
    assert requests.get(connect, allow_redirects=False, timeout=5).status_code == 404  # ticket used


@pytest.mark.parametrize(("over", "message"), [
    ({"sign": "0" * 32}, "签名错误"),
    ({"extend": "EXT.2"}, "签名错误"),  # sign covers extend
    ({"shopId": "1"}, "门店或公众号不存在"),
    ({"timestamp": "1000"}, "签名错误"),
])
def test_wifi_jsonp_rejections(fake: FakeServer, over: dict[str, str], message: str) -> None:
    body = jsonp(fake, **over)
    assert body.startswith('jsonpCallback({"success": false') and message in body


def test_demo_env_configures_keliu_against_the_fake() -> None:
    from keliu import config
    from keliu.testing.wechat_fake import demo_env

    cfg = config.load(env=demo_env("http://127.0.0.1:9009/"))
    w = cfg.wechat
    assert (w.enabled, w.fake, w.app_id, w.secret_key) == (True, True, ACC.wifi_app_id, ACC.secret_key)
    assert w.wifi_js_url == "http://127.0.0.1:9009/resources/js/wechatticket/wechatutil.js"
    assert w.open_base == w.api_base == "http://127.0.0.1:9009"


def test_wifi_jsonp_refuses_a_correctly_signed_but_stale_timestamp(fake: FakeServer) -> None:
    body = jsonp(fake, ts=str(int(time.time() * 1000) - 10 * 60 * 1000))
    assert body.startswith('jsonpCallback({"success": false') and "时间戳过期" in body
