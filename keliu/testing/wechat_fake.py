"""A FAKE WeChat server for tests and the demo (an edge: a small Flask app). It is not WeChat.

It speaks the documented endpoints closely enough to drive keliu's WeChat code end to end without the internet:

* 微信连Wi-Fi: ``/resources/js/wechatticket/wechatutil.js`` (a FAKE ``Wechat_GotoRedirect``) and the JSONP step
  ``/operator/callWechat.xhtml``, which checks appId, shopId and the MD5 ``sign`` like WeChat does. WeChat would
  answer ``weixin://connectToFreeWifi/...`` to open its app; a browser cannot, so the fake answers a URL of its own,
  ``/fake/connect``, standing in for the WeChat app. Like the app, it makes the *phone* call ``authUrl`` with
  ``extend``, ``openId`` and ``tid`` (by redirecting the phone's browser there).
* 网页授权: ``/connect/oauth2/authorize`` (only for a ``MicroMessenger`` user agent, as WeChat's works only inside
  WeChat), ``/sns/oauth2/access_token`` (single-use codes, 5 minutes), ``/sns/userinfo``; failures are
  ``{"errcode", "errmsg"}`` bodies with HTTP 200 and ``text/plain``, as WeChat sends them.
* the member card (会员卡): ``/cgi-bin/token`` (client credential), ``/card/create`` (``MEMBER_CARD`` only: the 卡券
  coupon types can no longer be created), ``/card/qrcode/create`` (``QR_CARD``), ``/card/membercard/activate``
  (only a code a user took), ``/card/membercard/updateuser`` (only an activated card: its custom fields and
  background replaced, as the member would see them); ``/fake/card/take?ticket=&user=`` stands in for WeChat
  opening the card QR code. The state records the card templates, the QR codes, the cards taken, the activations
  and the updates (``card_updates``, and the card's current values in ``card_fields``).
* 公众号 template messages (with the same client-credential token): ``/cgi-bin/message/template/send?access_token=…``
  (``touser``, ``template_id``, ``data``, optional ``url`` and ``client_msg_id``). Like WeChat, one ``client_msg_id`` for one
  openid sends one message (WeChat's 防重入 id): a repeat is answered with the first ``msgid`` and not delivered
  again. ``state.templates`` lists the delivered messages, ``state.template_calls`` counts every call.
* ``/fake/control`` (POST JSON) makes the next call of an endpoint fail with a given errcode.
* :func:`send_push` posts a signed official-account event (what WeChat's servers do) to a URL.
* :func:`demo_env` gives the ``KELIU_WECHAT_*`` variables that point keliu at a running fake.

Every page it renders says FAKE. Base URLs in keliu's ``[wechat]`` config point at it (``open_base``, ``api_base``,
``wifi_js_url``, and ``fake = true`` so that keliu's pages say FAKE too). Run it alone with
``python -m keliu.testing.wechat_fake --port 9009`` (add ``--allow-any-ua`` to open 网页授权 in a normal browser).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from flask import Flask, Response, abort, redirect, request

from portal.wechat.sign import WifiSignInput, push_signature, verify_wifi_sign

BANNER = "FAKE WeChat (keliu test double, not Tencent)"


@dataclass(frozen=True)
class FakeAccounts:
    """The accounts the fake knows; keliu's ``[wechat]`` section must use the same values."""

    wifi_app_id: str = "wxFAKEwifi000001"
    shop_id: str = "4242"
    secret_key: str = "fake-wifi-secret-key"
    oauth_app_id: str = "wxFAKEoauth00001"
    oauth_secret: str = "fake-oauth-secret"
    #: the Open Platform account both apps hang under (unionid is unique across it)
    open_platform: str = "fake-open-platform"
    #: only a MicroMessenger user agent may open the authorize page (like WeChat)
    require_wechat_ua: bool = True


@dataclass
class _State:
    codes: dict[str, tuple[str, str, str, float]] = field(default_factory=dict)  # code -> appid, user, scope, exp
    tokens: dict[str, tuple[str, str, str, float]] = field(default_factory=dict)  # token -> appid, openid, scope
    tickets: dict[str, dict[str, str]] = field(default_factory=dict)
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    auth_calls: list[str] = field(default_factory=list)  # authUrl calls handed to phones (URLs)
    # the card API (会员卡): client-credential tokens, card templates, card QR codes, cards taken, activations
    api_tokens: dict[str, float] = field(default_factory=dict)  # token -> expires
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # card_id -> card/create body
    card_qrcodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # ticket -> card/qrcode/create card
    cards_taken: dict[tuple[str, str], str] = field(default_factory=dict)  # (card_id, code) -> openid
    activations: list[dict[str, Any]] = field(default_factory=list)  # card/membercard/activate bodies
    card_updates: list[dict[str, Any]] = field(default_factory=list)  # card/membercard/updateuser bodies
    card_fields: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (card_id, code) -> shown
    templates: list[dict[str, Any]] = field(default_factory=list)  # delivered template messages
    template_ids: dict[tuple[str, str], int] = field(default_factory=dict)  # (openid, client_msg_id) -> msgid
    template_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def openid_for(app_id: str, user: str) -> str:
    """openids are per app: the same person has a different openid in each official account."""
    return "oFAKE" + hashlib.sha256(f"{app_id}|{user}".encode()).hexdigest()[:23]


def unionid_for(open_platform: str, user: str) -> str:
    return "uFAKE" + hashlib.sha256(f"{open_platform}|{user}".encode()).hexdigest()[:23]


def _json(body: dict[str, Any]) -> Response:
    # WeChat's API answers JSON as text/plain, errors included, always with HTTP 200.
    return Response(json.dumps(body, ensure_ascii=False), mimetype="text/plain")


def _err(code: int, msg: str) -> Response:
    return _json({"errcode": code, "errmsg": f"{msg} (FAKE)"})


WECHATUTIL_JS = """/* %(banner)s: stands in for wifi.weixin.qq.com's wechatutil.js */
function jsonpCallback(result) {
  if (result && result.success) { document.location = result.data; }
  else if (result) { var e = document.getElementById('wechat-error'); if (e) { e.textContent = result.data; }
                     else { alert(result.data); } }
}
function Wechat_GotoRedirect(appId, extend, timestamp, sign, shopId, authUrl, mac, ssid, bssid) {
  var url = "%(base)s/operator/callWechat.xhtml?appId=" + appId + "&extend=" + extend + "&timestamp=" + timestamp
    + "&sign=" + sign + "&shopId=" + shopId + "&authUrl=" + encodeURIComponent(authUrl) + "&mac=" + mac
    + "&ssid=" + encodeURIComponent(ssid) + "&bssid=" + bssid;
  var script = document.createElement('script');
  script.setAttribute('src', url);
  document.getElementsByTagName('head')[0].appendChild(script);
}
"""


def create_fake(accounts: FakeAccounts | None = None, clock: Callable[[], float] = time.time) -> Flask:
    """The FAKE WeChat as a Flask app. ``app.extensions['wechat_fake']`` holds its state (tests inspect it)."""
    acc = accounts or FakeAccounts()
    app = Flask("wechat_fake")
    state = _State()
    app.extensions["wechat_fake"] = state

    def failing(endpoint: str) -> Response | None:
        with state.lock:
            hit = state.fail.pop(endpoint, None)
        return _err(*hit) if hit else None

    @app.after_request
    def label(resp: Response) -> Response:
        resp.headers["X-Fake"] = BANNER
        return resp

    @app.get("/")
    def index() -> Response:
        return Response(f"<h1>{BANNER}</h1>", mimetype="text/html")

    # --- 微信连Wi-Fi -------------------------------------------------------------------------------------------
    @app.get("/resources/js/wechatticket/wechatutil.js")
    def wechatutil() -> Response:
        base = request.host_url.rstrip("/")
        return Response(WECHATUTIL_JS % {"banner": BANNER, "base": base}, mimetype="application/javascript")

    @app.get("/operator/callWechat.xhtml")
    def call_wechat() -> Response:
        q = request.args
        callback = q.get("callback", "jsonpCallback")
        if not callback.isidentifier():
            abort(400)

        def answer(success: bool, data: str) -> Response:
            body = json.dumps({"success": success, "data": data}, ensure_ascii=False)
            return Response(f"{callback}({body})", mimetype="application/javascript")

        needed = ("appId", "extend", "timestamp", "sign", "shopId", "authUrl", "mac", "ssid", "bssid")
        if any(k not in q for k in needed):
            return answer(False, "参数缺失 (FAKE)")
        if q["appId"] != acc.wifi_app_id or q["shopId"] != acc.shop_id:
            return answer(False, "门店或公众号不存在 (FAKE)")
        fields = WifiSignInput(q["appId"], q["extend"], q["timestamp"], q["shopId"], q["authUrl"], q["mac"],
                               q["ssid"], q["bssid"])
        if not verify_wifi_sign(fields, acc.secret_key, q["sign"]):
            return answer(False, "签名错误 (FAKE)")
        if not q["timestamp"].isdigit() or abs(clock() * 1000 - int(q["timestamp"])) > 5 * 60 * 1000:
            return answer(False, "时间戳过期 (FAKE)")
        ticket = secrets.token_urlsafe(16)
        with state.lock:
            state.tickets[ticket] = dict(q.items())
        return answer(True, request.host_url.rstrip("/") + "/fake/connect?ticket=" + ticket)

    @app.get("/fake/connect")
    def connect() -> Response:
        """Stands in for the WeChat app that ``weixin://connectToFreeWifi`` would open: it calls authUrl."""
        with state.lock:
            t = state.tickets.pop(request.args.get("ticket", ""), None)
        if t is None:
            return Response(f"<h1>{BANNER}</h1><p>unknown or used ticket</p>", status=404, mimetype="text/html")
        user = request.args.get("user") or t["mac"]
        query = urllib.parse.urlencode({
            "extend": t["extend"],
            "openId": openid_for(t["appId"], user),
            # WeChat's tid is the user's phone number, encrypted; the fake's is opaque random text.
            "tid": secrets.token_hex(16),
        })
        url = t["authUrl"] + ("&" if "?" in t["authUrl"] else "?") + query
        with state.lock:
            state.auth_calls.append(url)
        return redirect(url, code=302)  # type: ignore[return-value]

    # --- 网页授权 ------------------------------------------------------------------------------------------------
    @app.get("/connect/oauth2/authorize")
    def authorize() -> Response:
        q = request.args
        if acc.require_wechat_ua and "MicroMessenger" not in request.headers.get("User-Agent", ""):
            return Response(f"<h1>{BANNER}</h1><p>请在微信客户端打开链接</p>", mimetype="text/html")
        if q.get("appid") != acc.oauth_app_id:
            return Response(f"<h1>{BANNER}</h1><p>appid 参数错误</p>", mimetype="text/html")
        if q.get("response_type") != "code" or q.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
            return Response(f"<h1>{BANNER}</h1><p>scope 参数错误</p>", mimetype="text/html")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return Response(f"<h1>{BANNER}</h1><p>redirect_uri 参数错误</p>", mimetype="text/html")
        user = request.cookies.get("fake_wechat_user") or q.get("fake_user") or "alice"
        code = secrets.token_urlsafe(16)
        with state.lock:
            state.codes[code] = (acc.oauth_app_id, user, q["scope"], clock() + 300)
        sep = "&" if "?" in redirect_uri else "?"
        params = urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
        return redirect(redirect_uri + sep + params, code=302)  # type: ignore[return-value]

    @app.get("/sns/oauth2/access_token")
    def access_token() -> Response:
        q = request.args
        if (hit := failing("access_token")) is not None:
            return hit
        if q.get("appid") != acc.oauth_app_id:
            return _err(40013, "invalid appid")
        if q.get("secret") != acc.oauth_secret:
            return _err(40125, "invalid appsecret")
        if q.get("grant_type") != "authorization_code":
            return _err(40002, "invalid grant_type")
        with state.lock:
            entry = state.codes.pop(q.get("code", ""), None)  # single use
        if entry is None:
            return _err(40029, "invalid code")
        _app, user, scope, exp = entry
        if clock() >= exp:
            return _err(40029, "invalid code")
        token = secrets.token_urlsafe(24)
        openid = openid_for(acc.oauth_app_id, user)
        with state.lock:
            state.tokens[token] = (acc.oauth_app_id, user, scope, clock() + 7200)
        body: dict[str, Any] = {"access_token": token, "expires_in": 7200, "refresh_token": secrets.token_urlsafe(24),
                                "openid": openid, "scope": scope}
        if scope == "snsapi_userinfo":
            body["unionid"] = unionid_for(acc.open_platform, user)
        return _json(body)

    @app.get("/sns/userinfo")
    def userinfo() -> Response:
        q = request.args
        if (hit := failing("userinfo")) is not None:
            return hit
        with state.lock:
            entry = state.tokens.get(q.get("access_token", ""))
        if entry is None or clock() >= entry[3]:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        app_id, user, scope, _exp = entry
        if q.get("openid") != openid_for(app_id, user):
            return _err(40003, "invalid openid")
        if scope != "snsapi_userinfo":
            return _err(48001, "api unauthorized")
        return _json({"openid": openid_for(app_id, user), "nickname": f"{user} (FAKE)", "sex": 0, "province": "",
                      "city": "", "country": "CN", "headimgurl": "", "privilege": [],
                      "unionid": unionid_for(acc.open_platform, user)})

    # --- the card API: the member card (会员卡) -----------------------------------------------------------------
    @app.get("/cgi-bin/token")
    def api_token() -> Response:
        q = request.args
        if (hit := failing("cgi_token")) is not None:
            return hit
        if q.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if q.get("appid") != acc.oauth_app_id:
            return _err(40013, "invalid appid")
        if q.get("secret") != acc.oauth_secret:
            return _err(40125, "invalid appsecret")
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.api_tokens[token] = clock() + 7200
        return _json({"access_token": token, "expires_in": 7200})

    def card_call(endpoint: str) -> tuple[dict[str, Any] | None, Response | None]:
        """The JSON body of a card API call with a good access token, or WeChat's error."""
        if (hit := failing(endpoint)) is not None:
            return None, hit
        with state.lock:
            exp = state.api_tokens.get(request.args.get("access_token", ""))
        if exp is None or clock() >= exp:
            return None, _err(40001, "invalid credential, access_token is invalid or not latest")
        try:
            body = json.loads(request.get_data().decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, _err(47001, "data format error")
        return (body, None) if isinstance(body, dict) else (None, _err(47001, "data format error"))

    @app.post("/card/create")
    def card_create() -> Response:
        body, error = card_call("card_create")
        if body is None:
            return error or _err(-1, "system error")
        c = body.get("card") or {}
        # the 卡券 coupon types can no longer be created (since 1 Apr 2021); member cards still can
        if c.get("card_type") != "MEMBER_CARD":
            return _err(40078, "invalid card type: only MEMBER_CARD")
        base = (c.get("member_card") or {}).get("base_info") or {}
        for name in ("logo_url", "brand_name", "title", "code_type", "sku", "date_info"):
            if not base.get(name):
                return _err(40000 + len(name), f"missing base_info.{name}")
        if len(base["brand_name"]) > 12 or len(base["title"]) > 9:
            return _err(40071, "brand_name or title too long")
        card_id = "pFAKE" + secrets.token_hex(12)
        with state.lock:
            state.cards[card_id] = body
        return _json({"errcode": 0, "errmsg": "ok", "card_id": card_id})

    @app.post("/card/qrcode/create")
    def card_qrcode() -> Response:
        body, error = card_call("card_qrcode")
        if body is None:
            return error or _err(-1, "system error")
        one = ((body.get("action_info") or {}).get("card")) or {}
        with state.lock:
            tpl = state.cards.get(str(one.get("card_id", "")))
        if body.get("action_name") != "QR_CARD" or tpl is None:
            return _err(40073, "invalid card id")
        custom = tpl["card"]["member_card"]["base_info"].get("use_custom_code")
        code = str(one.get("code", ""))
        if custom and not (code and len(code) <= 20):
            return _err(40056, "invalid serial code")
        ticket = secrets.token_urlsafe(16)
        with state.lock:
            state.card_qrcodes[ticket] = dict(one)
        base_url = request.host_url.rstrip("/")
        return _json({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expire_seconds": body.get("expire_seconds"),
                      "url": f"{base_url}/fake/card/take?ticket={ticket}",
                      "show_qrcode_url": f"{base_url}/fake/card/take?ticket={ticket}&show=1"})

    @app.get("/fake/card/take")
    def card_take() -> Response:
        """Stands in for WeChat opening a card QR code: the user (``?user=``) takes the card into their card
        holder (WeChat would then push ``user_get_card`` to the account's server; tests send it with
        :func:`send_push`)."""
        with state.lock:
            one = state.card_qrcodes.get(request.args.get("ticket", ""))
            if one is not None:
                user = request.args.get("user") or "alice"
                state.cards_taken[(str(one["card_id"]), str(one.get("code", "")))] = openid_for(acc.oauth_app_id,
                                                                                                 user)
        if one is None:
            return Response(f"<h1>{BANNER}</h1><p>unknown card QR code</p>", status=404, mimetype="text/html")
        return Response(f"<h1>{BANNER}</h1><p>会员卡已放入卡包 / the card is in the card holder</p>",
                        mimetype="text/html")

    @app.post("/card/membercard/activate")
    def card_activate() -> Response:
        body, error = card_call("card_activate")
        if body is None:
            return error or _err(-1, "system error")
        key = (str(body.get("card_id", "")), str(body.get("code", "")))
        with state.lock:
            known, taken = key[0] in state.cards, key in state.cards_taken
            ok = known and taken and bool(body.get("membership_number"))
            if ok:
                state.activations.append(body)
        if not known:
            return _err(40073, "invalid card id")
        if not ok:
            return _err(40056, "invalid serial code")  # a code no user holds cannot be activated
        return _json({"errcode": 0, "errmsg": "ok"})

    @app.post("/card/membercard/updateuser")
    def card_updateuser() -> Response:
        """A member card's user info: only a card a user took and keliu activated; the values given replace the
        card's (``card_fields``, what the member sees), each call is recorded (``card_updates``)."""
        body, error = card_call("card_updateuser")
        if body is None:
            return error or _err(-1, "system error")
        key = (str(body.get("card_id", "")), str(body.get("code", "")))
        with state.lock:
            known = key[0] in state.cards
            active = any((a["card_id"], a["code"]) == key for a in state.activations)
            holder = state.cards_taken.get(key, "")
            if known and active:
                state.card_updates.append(body)
                shown = state.card_fields.setdefault(key, {})
                shown.update({k: v for k, v in body.items() if k.startswith("custom_field_value")
                              or k in ("background_pic_url", "bonus", "balance")})
        if not known:
            return _err(40073, "invalid card id")
        if not active:
            return _err(40056, "invalid serial code")
        return _json({"errcode": 0, "errmsg": "ok", "result_bonus": 0, "result_balance": 0, "openid": holder})

    @app.post("/cgi-bin/message/template/send")
    def template_send() -> Response:
        with state.lock:
            state.template_calls += 1
            exp = state.api_tokens.get(request.args.get("access_token", ""))
        if exp is None or clock() >= exp:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        hit = failing("template_send")
        if hit:
            return hit
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not body.get("touser") or not body.get("template_id") \
                or not isinstance(body.get("data"), dict):
            return _err(47001, "data format error")
        key = (str(body["touser"]), str(body.get("client_msg_id") or ""))
        with state.lock:
            if key[1] and key in state.template_ids:
                return _json({"errcode": 0, "errmsg": "ok", "msgid": state.template_ids[key]})
            msgid = 1_000_000 + len(state.templates)
            if key[1]:
                state.template_ids[key] = msgid
            state.templates.append({**body, "msgid": msgid})
        return _json({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    @app.post("/fake/control")
    def control() -> Response:
        body = request.get_json(force=True, silent=True) or {}
        with state.lock:
            for endpoint, (code, msg) in (body.get("fail") or {}).items():
                state.fail[str(endpoint)] = (int(code), str(msg))
        return _json({"ok": True})

    return app


def push_body(to_user: str, from_user: str, event: str, now: int, extra: dict[str, str] | None = None) -> bytes:
    """An official-account event push as WeChat sends it (plain-text mode XML); ``extra``: the event's own fields
    (``user_get_card``: ``CardId``, ``UserCardCode``, ``IsGiveByFriend``, ``OuterStr``)."""
    more = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in (extra or {}).items())
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"{more}</xml>"
    ).encode()


def send_push(url: str, token: str, *, to_user: str, from_user: str, event: str, now: int,
              nonce: str | None = None, signature: str | None = None, extra: dict[str, str] | None = None) -> Any:
    """POST a signed event push to ``url`` like WeChat's servers do; ``signature`` overrides (to forge one)."""
    import requests

    nonce = nonce or str(secrets.randbelow(10**9))
    ts = str(now)
    sig = signature if signature is not None else push_signature(token, ts, nonce)
    return requests.post(url, params={"signature": sig, "timestamp": ts, "nonce": nonce},
                         data=push_body(to_user, from_user, event, now, extra),
                         headers={"Content-Type": "text/xml"}, timeout=10)


class FakeServer:
    """The fake on a real socket in a thread (for tests over real HTTP). ``url`` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, accounts: FakeAccounts | None = None) -> None:
        from werkzeug.serving import make_server

        self.app = create_fake(accounts)
        self.state: _State = self.app.extensions["wechat_fake"]
        self._server = make_server(host, port, self.app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="wechat-fake", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def demo_env(base_url: str, accounts: FakeAccounts | None = None, token: str = "fake-mp-token") -> dict[str, str]:
    """``KELIU_WECHAT_*`` variables that point keliu at a fake running at ``base_url`` (for ``keliu demo``)."""
    acc = accounts or FakeAccounts()
    base = base_url.rstrip("/")
    return {
        "KELIU_WECHAT_ENABLED": "1",
        "KELIU_WECHAT_FAKE": "1",
        "KELIU_WECHAT_APP_ID": acc.wifi_app_id,
        "KELIU_WECHAT_SHOP_ID": acc.shop_id,
        "KELIU_WECHAT_SECRET_KEY": acc.secret_key,
        "KELIU_WECHAT_SSID": "keliu-demo",
        "KELIU_WECHAT_OAUTH_APP_ID": acc.oauth_app_id,
        "KELIU_WECHAT_OAUTH_SECRET": acc.oauth_secret,
        "KELIU_WECHAT_TOKEN": token,
        "KELIU_WECHAT_OPEN_BASE": base,
        "KELIU_WECHAT_API_BASE": base,
        "KELIU_WECHAT_WIFI_JS_URL": base + "/resources/js/wechatticket/wechatutil.js",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=BANNER)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9009)
    parser.add_argument("--allow-any-ua", action="store_true", help="open the authorize page outside 'WeChat'")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    import logging

    from werkzeug.serving import make_server

    # make_server, not run_simple: no red "development server" warning on the demo's console (this server is a
    # test fake and says so on every page), and a request line per request only with --verbose
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    accounts = FakeAccounts(require_wechat_ua=not args.allow_any_ua)
    server = make_server(args.host, args.port, create_fake(accounts), threaded=True)
    print(f"{BANNER} on http://{args.host}:{args.port}/  accounts: {accounts.wifi_app_id}, {accounts.oauth_app_id}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
