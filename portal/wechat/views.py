"""WeChat login: the 微信连Wi-Fi hand-off and WeChat web authorization (the ``wechat`` blueprint, thin views).

微信连Wi-Fi (the captive sheet cannot run WeChat's OAuth, so the page hands the phone over to the WeChat app):

1. ``GET /wechat/`` — the "WeChat login" page: the access terms (required) and the optional consents.
2. ``POST /wechat/start`` — the client (MAC from the neighbour table, never from the request) gets a temporary
   release that reaches only the walled garden (:mod:`.wechat_release`: bounded time, bounded count per hour), an
   ``extend`` token bound to it (:mod:`.wechat_extend`), and a page that loads WeChat's JS and calls
   ``Wechat_GotoRedirect`` with the server-computed ``sign`` (:mod:`.wechat_sign`; timestamp in ms).
3. ``GET /wechat/auth?extend&openId&tid`` — the ``authUrl`` the WeChat app calls from the phone. The token is
   verified (signature bound to the caller's MAC and IP, expiry, store) and consumed once; the openId becomes a
   member; login and consents are recorded; the Gate gets ``AllowClient``; the answer is 200 (WeChat accepts only
   200 or one 302). Anything wrong: 403, nothing allowed, a log line with the reason (no MAC, no openId).

网页授权 for member pages opened inside WeChat: ``/wechat/oauth`` (``snsapi_base`` silently, ``snsapi_userinfo``
after the member agreed on our page), ``/wechat/oauth/callback`` (``state`` checked), ``/wechat/bind`` (bind the
WeChat identity to a phone once, by SMS code), ``/wechat/member`` (the member card). The official-account push
endpoint ``/wechat/mp`` is :mod:`portal.wechat.official_account`, nested here.
"""
from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.engine import Connection

import marketing
from portal.config import WechatConfig
from portal.core import i18n
from portal.core import phone as ph
from portal.core.login_plan import (
    OPTIONAL_CONSENTS,
    REQUIRED_CONSENT,
    Authorized,
    Choices,
    UseNonce,
    WechatMember,
)
from portal.core.phone import mask
from portal.core.redirects import safe_next
from portal.edges.clients import Client
from portal.errors import ConsentMissing, PortalError, RateLimited
from portal.services import Services, csrf, services
from portal.store import access
from portal.store import members as pm
from portal.store.sms_login import consume_code, mark_used, request_code
from portal.web import headers, pages
from portal.wechat import extend as wechat_extend
from portal.wechat import models as wm
from portal.wechat import official_account
from portal.wechat import release as wechat_release
from portal.wechat import store as wechat_store
from portal.wechat.oauth import WechatApiError, WechatOAuth, authorize_url
from portal.wechat.sign import WifiSignInput, wifi_sign

log = logging.getLogger("keliu.wechat")

blueprint = Blueprint("wechat", __name__, url_prefix="/wechat", template_folder="../templates")
blueprint.register_blueprint(official_account.blueprint)
csrf.exempt(official_account.receive)  # WeChat's servers sign their pushes; they cannot carry a CSRF token

#: an extend token lives as long as the release that lets the phone reach WeChat, plus this grace for the WeChat
#: app's authUrl call (made from the phone over the LAN, which needs no release)
EXTEND_GRACE_S = 30
REAL_WECHAT_HOSTS = ("weixin.qq.com", "wx.qq.com")


class WechatUnavailable(PortalError):
    status = 404
    code = "wechat_unavailable"


def _cfg(svc: Services) -> WechatConfig:
    return svc.cfg.wechat


def _is_fake(svc: Services) -> bool:
    """Pages say FAKE when configured against the local FAKE WeChat, or when WeChat's URLs are not WeChat's."""
    if _cfg(svc).fake:
        return True
    host = (urlsplit(_cfg(svc).wifi_js_url).hostname or "").lower()
    return not any(host == h or host.endswith("." + h) for h in REAL_WECHAT_HOSTS)


@dataclass(frozen=True)
class WifiAccount:
    """The store's 微信连Wi-Fi parameters (from the WeChat admin console); ``secret_key`` is never logged."""

    app_id: str
    shop_id: str
    secret_key: str = field(repr=False)


def _wifi_ready(svc: Services) -> WifiAccount:
    w = _cfg(svc)
    if not (w.app_id and w.shop_id and w.secret_key):
        raise WechatUnavailable("微信连Wi-Fi is not configured for this store (wechat.app_id, shop_id, secret_key)")
    return WifiAccount(w.app_id, w.shop_id, w.secret_key)


def _auth_url(svc: Services) -> str:
    return str(svc.cfg.portal.public_url) + url_for("wechat.auth")


# --- 微信连Wi-Fi --------------------------------------------------------------------------------------------------


@blueprint.get("/")
def index() -> str:
    svc = services()
    _wifi_ready(svc)
    return render_template("wechat/index.html", fake=_is_fake(svc), days=svc.cfg.portal.reauth_days)


@blueprint.post("/start")
def start() -> Any:
    svc = services()
    acc = _wifi_ready(svc)
    w = _cfg(svc)
    client = svc.client()
    form = request.form
    if form.get(REQUIRED_CONSENT) != "1":
        raise ConsentMissing("the access terms (real-name verification) must be accepted", "consent_required")
    choices = frozenset({REQUIRED_CONSENT} | {k for k in OPTIONAL_CONSENTS if form.get(k) == "1"})
    now_dt = svc.now()
    now = now_dt.timestamp()
    with svc.engine.begin() as conn:
        online = access.active_session(conn, client.device_id, now_dt, client.ip) is not None
        history = wm.release_history(conn, client.device_id, now_dt)
        decision = wechat_release.decide(
            wechat_release.ReleasePolicy(w.release_seconds, w.releases_per_hour),
            mac=client.mac, ip=client.ip, now=now, history=history, online=online)
        if decision.record:
            wm.record_release(conn, client.device_id, now_dt)
            wm.prune(conn, now_dt)
    if online:
        return redirect(url_for("wechat.online"))
    if not decision.granted:
        log.warning("wechat release refused for device %s: %s", client.device_id, decision.reason)
        raise RateLimited("too many WeChat attempts from this device; use SMS or try again later",
                          int(decision.retry_after) + 1)
    for command in decision.commands:
        svc.gate.execute(command)
    ttl_s = int(decision.until - now) + EXTEND_GRACE_S
    extend = wechat_extend.issue(svc.keys.token, store_id=svc.store_id, mac=client.mac, ip=client.ip, now=now,
                                 ttl_s=ttl_s, nonce=secrets.token_bytes(12), choices=choices)
    fields = WifiSignInput(app_id=acc.app_id, extend=extend, timestamp=str(int(now * 1000)), shop_id=acc.shop_id,
                           auth_url=_auth_url(svc), mac=client.mac, ssid=w.ssid, bssid=w.bssid)
    params = {"appId": fields.app_id, "extend": fields.extend, "timestamp": fields.timestamp,
              "sign": wifi_sign(fields, acc.secret_key), "shopId": fields.shop_id, "authUrl": fields.auth_url,
              "mac": fields.mac, "ssid": fields.ssid, "bssid": fields.bssid}
    log.info("wechat hand-off for device %s (release until %d)", client.device_id, int(decision.until))
    headers.allow_scripts_from(w.wifi_js_url)  # WeChat's script, and the JSONP step it loads from the same host
    resp = Response(render_template("wechat/start.html", params=params, js_url=w.wifi_js_url, fake=_is_fake(svc),
                                    release_s=int(decision.until - now)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@blueprint.get("/auth")
def auth() -> Any:
    """The authUrl. Rejections are 403 with a short text: WeChat shows the user a failure either way."""
    svc = services()
    acc = _wifi_ready(svc)
    extend = request.args.get("extend", "")
    openid = request.args.get("openId", "")
    # tid (the user's phone, encrypted by WeChat) is neither stored nor logged.
    try:
        client = svc.client()
    except PortalError as exc:
        log.warning("wechat authUrl rejected: %s", exc.code)
        return _rejected()
    now_dt = svc.now()
    try:
        claims = wechat_extend.verify(svc.keys.token, extend, mac=client.mac, ip=client.ip, now=now_dt.timestamp(),
                                      stores=frozenset({svc.store_id}))
    except wechat_extend.ExtendRejected as exc:
        log.warning("wechat authUrl rejected for device %s: %s", client.device_id, exc.reason)
        return _rejected()
    if not openid or len(openid) > 64 or not openid.replace("-", "").replace("_", "").isalnum():
        log.warning("wechat authUrl rejected for device %s: malformed openId", client.device_id)
        return _rejected()
    with svc.engine.begin() as conn:
        authorized = _login(conn, svc, acc, client, claims, openid, now_dt)
    if authorized is None:
        log.warning("wechat authUrl rejected for device %s: replayed", client.device_id)
        return _rejected()
    access.allow(svc, client, authorized.until)  # after the commit: the session table is the source of truth
    marketing.login_committed(current_app, member_id=authorized.member_id, store_id=svc.store_id, now=now_dt)
    log.info("wechat login: device %s member %s session %s", client.device_id, authorized.member_id,
             authorized.session_id)
    # the success page's coupons (only with marketing consent), shown above the link on: never lost to a redirect
    lg = pages.lang()
    resp = Response(render_template("wechat/online.html", fake=_is_fake(svc), landing=authorized.landing_url,
                                    coupons=pages.welcome(authorized.member_id), lang=lg,
                                    t=lambda k, **kw: i18n.gettext(lg, k, **kw)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _login(conn: Connection, svc: Services, acc: WifiAccount, client: Client, claims: wechat_extend.ExtendClaims,
           openid: str, now: datetime) -> Authorized | None:
    """Consume the token and store the whole login (its member: the openid's, through its identity), in the
    caller's transaction; None when the token was used before."""
    proof = UseNonce(claims.nonce, claims.store_id, datetime.fromtimestamp(claims.expires, tz=UTC))
    return access.complete_login(conn, svc, client, proof, WechatMember(acc.app_id, openid), "wechat",
                                 Choices.of(claims.choices | {REQUIRED_CONSENT}), pages.lang(), now)


def _rejected() -> Response:
    return Response("微信认证失败 / WeChat authentication failed", status=403, mimetype="text/plain")


@blueprint.get("/online")
def online() -> str:
    return render_template("wechat/online.html", fake=_is_fake(services()), landing=None)


# --- 网页授权 ------------------------------------------------------------------------------------------------------


def _oauth(svc: Services) -> WechatOAuth:
    w = _cfg(svc)
    if not (w.oauth_app_id and w.oauth_secret):
        raise WechatUnavailable("WeChat web authorization is not configured (wechat.oauth_app_id, oauth_secret)")
    return WechatOAuth(w.api_base, w.oauth_app_id, w.oauth_secret)


def _safe_next(value: object) -> str:
    """Only a local path (:func:`portal.core.redirects.safe_next`), else the member page: never an open redirect."""
    return safe_next(value, url_for("wechat.member"))


def _begin_oauth(svc: Services, scope: str, next_url: str) -> Any:
    client = _oauth(svc)
    state = secrets.token_urlsafe(24)
    session["wechat_oauth"] = {"state": state, "scope": scope, "next": next_url}
    redirect_uri = svc.cfg.portal.public_url + url_for("wechat.oauth_callback")
    return redirect(authorize_url(_cfg(svc).open_base, client.app_id, redirect_uri, scope, state))  # type: ignore[arg-type]


@blueprint.get("/oauth")
def oauth() -> Any:
    """``snsapi_base`` goes straight to WeChat (silent); ``snsapi_userinfo`` first asks the member on our page."""
    svc = services()
    _oauth(svc)
    scope = request.args.get("scope", "snsapi_base")
    next_url = _safe_next(request.args.get("next"))
    if scope == "snsapi_userinfo":
        return render_template("wechat/share.html", next=next_url, fake=_is_fake(svc))
    if scope != "snsapi_base":
        abort(400)
    return _begin_oauth(svc, "snsapi_base", next_url)


@blueprint.post("/oauth")
def oauth_userinfo() -> Any:
    svc = services()
    if request.form.get("share") != "1":
        return _begin_oauth(svc, "snsapi_base", _safe_next(request.form.get("next")))
    return _begin_oauth(svc, "snsapi_userinfo", _safe_next(request.form.get("next")))


@blueprint.get("/oauth/callback")
def oauth_callback() -> Any:
    svc = services()
    client = _oauth(svc)
    pending = session.pop("wechat_oauth", None)
    state = request.args.get("state", "")
    if not isinstance(pending, dict) or not state or not hmac.compare_digest(str(pending.get("state", "")), state):
        log.warning("wechat oauth callback rejected: state mismatch")
        abort(400)
    code = request.args.get("code")
    if not code:
        return render_template("wechat/message.html", fake=_is_fake(svc),
                               message="未授权 / You did not authorize keliu in WeChat."), 403
    try:
        token = client.exchange(code)
        profile = client.profile(token) if pending.get("scope") == "snsapi_userinfo" else None
    except WechatApiError as exc:
        log.warning("wechat oauth failed: errcode %s", exc.errcode)
        return render_template("wechat/message.html", fake=_is_fake(svc),
                               message=f"微信授权失败 / WeChat authorization failed ({exc.errcode})"), 502
    now = svc.now()
    unionid = profile.unionid if profile else token.unionid
    with svc.engine.begin() as conn:
        ident = wm.upsert_identity(conn, client.app_id, token.openid, now, unionid=unionid,
                                   nickname=profile.nickname if profile else None,
                                   headimgurl=profile.headimgurl if profile else None)
        member_id = wechat_store.member_for_oauth(conn, identity_id=ident, unionid=unionid, now=now)
    session["wechat_identity"] = ident
    if member_id is None:
        return redirect(url_for("wechat.bind", next=_safe_next(pending.get("next"))))
    return redirect(_safe_next(pending.get("next")))


def _identity(svc: Services) -> Any:
    ident = session.get("wechat_identity")
    if not isinstance(ident, int):
        return None
    with svc.engine.connect() as conn:
        return conn.execute(wm.identities.select().where(wm.identities.c.id == ident)).first()


@blueprint.get("/member")
def member() -> Any:
    svc = services()
    row = _identity(svc)
    if row is None:
        return redirect(url_for("wechat.oauth", next=url_for("wechat.member")))
    if row.member_id is None:
        return redirect(url_for("wechat.bind", next=url_for("wechat.member")))

    with svc.engine.connect() as conn:
        phone = pm.phone_of(conn, int(row.member_id))
        follows = wm.following_openid(conn, row.openid)
    if phone is None:
        # a WeChat-only member (made by a 连Wi-Fi login of the same account): the card needs the phone, once
        return redirect(url_for("wechat.bind", next=url_for("wechat.member")))
    return render_template("wechat/member.html", fake=_is_fake(svc), phone=mask(phone), nickname=row.nickname,
                           following=follows, unified=bool(row.unionid))


# --- binding a WeChat identity to a phone (SMS inside WeChat) ------------------------------------------------------


def _bind_client(svc: Services, identity_id: int) -> Any:
    """The SMS limits need a client. Inside WeChat the page may come from anywhere (mobile data), not the store's
    LAN, so the client is the identity: a keyed hash of it stands in for the device id."""

    key = hmac.new(svc.keys.token, f"wechat-bind:{identity_id}".encode(), "sha256").hexdigest()[:16]
    return Client(mac="", ip=request.remote_addr or "", device_id="wx" + key[:14])


def _check_code(svc: Services, client: Any, e164: str, code: str) -> None:
    """Verify and use an SMS code, without logging anyone onto the network: the SMS login's own check
    (:func:`portal.store.sms_login.consume_code`: one code at a time under a row lock, tries counted, single use)."""

    consume_code(svc, client, e164, code, mark_used)


@blueprint.route("/bind", methods=["GET", "POST"])
def bind() -> Any:

    svc = services()
    row = _identity(svc)
    if row is None:
        return redirect(url_for("wechat.oauth", next=url_for("wechat.bind")))
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("wechat/bind.html", fake=_is_fake(svc), next=next_url, phone="", message=None)
    client = _bind_client(svc, int(row.id))
    raw = request.form.get("phone", "")[:32]
    try:
        if request.form.get("action") == "code":
            request_code(svc, client, raw, "zh-CN")
            return render_template("wechat/bind.html", fake=_is_fake(svc), next=next_url, phone=raw, ok=True,
                                   message="验证码已发送 / Code sent")
        e164 = ph.normalize(raw)
        _check_code(svc, client, e164, request.form.get("code", ""))
        with svc.engine.begin() as conn:
            member_id = wechat_store.bind_phone(conn, identity_id=int(row.id), phone_e164=e164,
                                                store_id=svc.store_id, now=svc.now())
    except wechat_store.AlreadyBound as exc:
        return render_template("wechat/bind.html", fake=_is_fake(svc), next=next_url, phone=raw, ok=False,
                               message=f"已绑定其他手机号 / {exc}"), 409
    except PortalError as exc:
        return render_template("wechat/bind.html", fake=_is_fake(svc), next=next_url, phone=raw, ok=False,
                               message=exc.message), exc.status
    log.info("wechat identity %s bound to member %s (%s)", row.id, member_id, ph.mask(e164))
    return redirect(next_url, 303)
