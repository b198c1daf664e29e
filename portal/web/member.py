"""The member page ``/member`` (an edge: a Flask blueprint): log in by phone and SMS code from any network, show the
member card (a QR code that changes every minute, :mod:`marketing.core.card`), the member's consents (changeable
here), and bind the member to a shop assistant whose card they scanned (:mod:`marketing.staff`).

The convention other member pages build on: the logged-in member is ``session["member_id"]`` (int) with
``session["member_auth_at"]`` (ISO 8601, UTC); :func:`current_member_id` returns it (None when absent, malformed or
older than the session lifetime) and :func:`member_required` sends anyone else to the login.

The SMS login is the portal's own (:func:`portal.store.sms_login.request_code` and ``consume_code``: the same code
table, single use, tries counted under a row lock, the same per-IP, per-device and per-number limits). It works
from mobile data as well as on the store's LAN, so it never asks for the client's MAC: the "device" the limits and
the code are bound to is this browser (a random id kept in its session, keyed through ``token_hmac``). It logs
nobody onto the Wi-Fi and creates no member: a number that is not a member's is told so after the code proved it
(so the page is no oracle of who is a member). WeChat web authorization is :mod:`portal.wechat.member_login`.
"""
from __future__ import annotations

import functools
import hmac
import io
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import segno
import sqlalchemy as sa
from flask import Blueprint, current_app, make_response, redirect, render_template, request, session, url_for
from sqlalchemy.engine import Connection

from marketing import staff
from marketing.core import card
from marketing.core.attribution import Refused
from marketing.store import coupons
from marketing.store.models import sales
from portal.core import card_text
from portal.core import phone as ph
from portal.core.login_plan import MEMBER_PAGE_CONSENTS, OPTIONAL_CONSENTS
from portal.edges.clients import Client
from portal.errors import PortalError
from portal.services import Services, services
from portal.store import members as pm
from portal.store import rights
from portal.store.models import members
from portal.store.sms_login import consume_code, mark_used, request_code
from portal.web.pages import error_text, lang, language_headers

log = logging.getLogger("keliu.portal")
bp = Blueprint("member", __name__, url_prefix="/member")
F = TypeVar("F", bound=Callable[..., Any])

#: the consents a member may change on the card page (``terms`` is the Wi-Fi's, ``reauth`` a device's), and the
#: separate ones given here only (presence-triggered offers, trade-area offers)
CHANGEABLE = (*(k for k in OPTIONAL_CONSENTS if k in ("marketing", "analytics")), *MEMBER_PAGE_CONSENTS)


# --- the convention ------------------------------------------------------------------------------------------------


def current_member_id() -> int | None:
    """The member logged in on the member page, or None (also when the login is older than the session's life)."""
    member_id, at = session.get("member_id"), session.get("member_auth_at")
    if not isinstance(member_id, int) or isinstance(member_id, bool) or not isinstance(at, str):
        return None
    try:
        auth_at = datetime.fromisoformat(at)
    except ValueError:
        return None
    if auth_at.tzinfo is None:
        return None
    age = services().now() - auth_at
    if age.total_seconds() < -60 or age > current_app.permanent_session_lifetime:
        return None
    return member_id


def member_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_member_id() is None:
            return redirect(url_for("member.index"))
        return view(*args, **kwargs)

    return cast(F, wrapped)


#: what a member's login or logout leaves in the session: the admin console's login (its own, server-side session
#: id: a member logging in on the same browser must not log the admin out, nor the other way round)
OTHER_LOGINS = ("admin_sid",)


def _reset_session(keep: tuple[str, ...]) -> None:
    """Empty the session but for ``keep`` (and the other logins'): nothing of an earlier visitor's member session
    survives, and the CSRF token is a new one (against session fixation: a session planted before the login is
    not the one that is logged in)."""
    kept = {k: session[k] for k in (*OTHER_LOGINS, *keep) if k in session}
    permanent = session.permanent
    session.clear()
    session.update(kept)
    session.permanent = permanent  # the admin's login keeps its lifetime


def sign_in(member_id: int) -> None:
    """Log ``member_id`` in on this browser (the SMS form here, the WeChat authorization in portal.wechat)."""
    _reset_session(("wechat_identity", "member_staff_code"))
    session.permanent = True
    session["member_id"] = member_id
    session["member_auth_at"] = services().now().isoformat()


# --- pages -----------------------------------------------------------------------------------------------------------


def _browser_client(svc: Services) -> Client:
    """The SMS limits' "device" off the store's LAN: this browser, a random id in its session, keyed."""
    browser = session.get("member_browser")
    if not isinstance(browser, str) or len(browser) < 16:
        browser = secrets.token_urlsafe(16)
        session["member_browser"] = browser
    key = hmac.new(svc.keys.token, f"member-page:{browser}".encode(), "sha256").hexdigest()
    return Client(mac="", ip=request.remote_addr or "", device_id="mp" + key[:14])


def _page(template: str, status: int = 200, **ctx: Any) -> Any:
    """A member page in the shopper's language (:func:`portal.web.pages.lang`; ``?lang=`` is remembered)."""
    lg = lang()
    resp = make_response(render_template(template, lang=lg, t=lambda k, **kw: card_text.t(lg, k, **kw), **ctx),
                         status)
    return language_headers(resp, lg)


def _login_page(status: int = 200, **ctx: Any) -> Any:
    svc = services()
    wechat = bool(svc.cfg.wechat.enabled and svc.cfg.wechat.oauth_app_id and svc.cfg.wechat.oauth_secret)
    ctx.setdefault("phone", "")
    return _page("member/login.html", status, wechat=wechat, pending_staff="member_staff_code" in session, **ctx)


@bp.get("/")
@bp.get("")
def index() -> Any:
    member_id = current_member_id()
    if member_id is None:
        return _login_page()
    return _card_page(member_id)


@bp.post("/code")
def code() -> Any:
    svc = services()
    raw = request.form.get("phone", "")[:32]
    try:
        request_code(svc, _browser_client(svc), raw, lang())
    except PortalError as exc:
        return _login_page(exc.status, phone=raw, error=error_text(exc, lang()))
    return _login_page(phone=raw, sent=True)


@bp.post("/login")
def login() -> Any:
    svc = services()
    raw = request.form.get("phone", "")[:32]
    try:
        e164 = ph.normalize(raw)

        def find(conn: Connection, code_id: int, now: datetime) -> int | None:
            mark_used(conn, code_id, now)
            return conn.execute(sa.select(members.c.id).where(members.c.phone_e164 == e164)).scalar()

        member_id = consume_code(svc, _browser_client(svc), e164, request.form.get("code", ""), find)
    except PortalError as exc:
        return _login_page(exc.status, phone=raw, sent=True, error=error_text(exc, lang()))
    if member_id is None:
        return _login_page(404, error=card_text.t(lang(), "m_not_member"))
    sign_in(int(member_id))
    log.info("member page login %s", ph.mask(e164))
    return redirect(url_for("member.index"), 303)


@bp.post("/logout")
def logout() -> Any:
    _reset_session(())
    return redirect(url_for("member.index"), 303)


@bp.get("/qr.svg")
@member_required
def qr() -> Any:
    """A fresh card code as an SVG QR code (never cached: each one is good for a minute and a single use)."""
    svc = services()
    member_id = current_member_id()
    assert member_id is not None
    token = card.sign(card.card_key(svc.keys.token), svc.mall_id, member_id, int(svc.clock()),
                      secrets.token_bytes(12))
    buf = io.BytesIO()
    segno.make(token, error="m", micro=False).save(buf, kind="svg", scale=6, border=4, xmldecl=False)
    resp = make_response(buf.getvalue())
    resp.headers["Content-Type"] = "image/svg+xml"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _card_page(member_id: int, status: int = 200, **ctx: Any) -> Any:
    svc = services()
    with svc.engine.connect() as conn:
        row = conn.execute(sa.select(members.c.phone_e164).where(members.c.id == member_id)).first()
        consents = pm.current_consents(conn, member_id)
        code = session.get("member_staff_code")
        pending = staff.card_by_code(conn, code) if isinstance(code, str) else None
        held = coupons.member_coupons(conn, member_id, svc.now())
        rows = conn.execute(sa.select(sales.c.store_id, sales.c.kind, sales.c.ts, sales.c.amount_cents)
                              .where(sales.c.member_id == member_id).order_by(sales.c.ts.desc()).limit(20)).all()
    if row is None:  # the member was erased
        _reset_session(())
        return _login_page()
    names = {s.id: s.name or s.id for s in svc.cfg.stores}
    for c in held:
        c["where"] = ", ".join(names.get(s, s) for s in c["stores"])
        c["until_local"] = local_until(svc, c["expires_at"], c["stores"][0] if c["stores"] else svc.store_id)
        c["min_spend"] = c["min_spend_cents"] / 100
    bought = [{"store_id": p.store_id, "kind": p.kind, "amount_cents": p.amount_cents,
               "local_day": p.ts.astimezone(_zone(svc, p.store_id)).strftime("%Y-%m-%d")} for p in rows]
    if request.args.get("wechat_card") == "failed":
        ctx.setdefault("error", card_text.t(lang(), "m_wechat_card_failed"))
    # the member card in WeChat, when portal.wechat.member_card registered its page (this layer imports no WeChat)
    ctx["wechat_card"] = "wechat_card.add" in current_app.view_functions
    return _page("member/card.html", status, phone=ph.mask(row.phone_e164) if row.phone_e164 else "",
                 consents={k: consents.get(k, False) for k in CHANGEABLE}, ttl=card.TTL_S,
                 refresh=card.REFRESH_S, pending_staff=pending, coupons=held, purchases=bought,
                 store_names=names, **ctx)


def _zone(svc: Services, store_id: str) -> ZoneInfo:
    tz = next((s.timezone for s in svc.cfg.stores if s.id == store_id), svc.cfg.timezone)
    return ZoneInfo(tz)


def local_until(svc: Services, expires_at: datetime, store_id: str) -> str:
    """The last local minute a coupon is valid, in the store's zone ("until 23:59" of its last day)."""
    return (expires_at - timedelta(seconds=1)).astimezone(_zone(svc, store_id)).strftime("%Y-%m-%d %H:%M")


@bp.post("/consents")
@member_required
def consents() -> Any:
    svc = services()
    member_id = current_member_id()
    assert member_id is not None
    now = svc.now()
    lg = lang()
    with svc.engine.begin() as conn:
        before = pm.current_consents(conn, member_id)
        given = [k for k in CHANGEABLE if request.form.get(k) == "1" and not before.get(k, False)]
        taken = [k for k in CHANGEABLE if request.form.get(k) != "1" and before.get(k, False)]
        # a withdrawal is the member-rights page's, in the same transaction: analytics takes every stable device
        # id linked to the member out of the sensor's registry now, not at the phone's next Wi-Fi login
        rights.withdraw(conn, member_id, taken, svc.store_id, lg, now)
        for kind in given:
            pm.record_consent(conn, member_id, svc.store_id, kind, True, lg, now)
    return _card_page(member_id, notice=card_text.t(lg, "m_saved"))


# --- a shop assistant's card ---------------------------------------------------------------------------------------


@bp.get("/staff/<code>")
def staff_card(code: str) -> Any:
    """The URL in a shop assistant's QR card: remembered, then confirmed by the member on the card page (a POST with
    its CSRF token, so another site cannot bind a member by making the browser open the URL)."""
    session["member_staff_code"] = code[:32]
    return redirect(url_for("member.index"), 303)


@bp.post("/staff")
@member_required
def staff_confirm() -> Any:
    svc = services()
    member_id = current_member_id()
    assert member_id is not None
    code = session.pop("member_staff_code", None)
    if not isinstance(code, str):
        return redirect(url_for("member.index"), 303)
    if request.form.get("bind") != "1":
        return _card_page(member_id)
    now = svc.now()
    with svc.engine.begin() as conn:
        found = staff.card_by_code(conn, code)
        if found is None:
            return _card_page(member_id, 404, error=card_text.t(lang(), "m_staff_invalid"))
        decision = staff.scan(conn, member_id, found, now, svc.cfg.store(found.store_id).timezone)
    if isinstance(decision, Refused):
        return _card_page(member_id, 409, error=card_text.t(lang(), "m_staff_taken"))
    log.info("member %s bound to staff %s in %s", member_id, found.staff, found.store_id)
    return _card_page(member_id, notice=card_text.t(lang(), "m_staff_bound", name=found.staff))


def member_phone_hash(conn: Connection, svc: Services, member_id: int) -> str | None:
    """The member's phone as :func:`marketing.staff.phone_hash` (None: no phone), to compare with a staff phone."""
    phone = pm.phone_of(conn, member_id)
    return None if phone is None else staff.phone_hash(svc.keys.token, phone)
