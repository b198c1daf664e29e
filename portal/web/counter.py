"""The counter page ``/counter`` (an edge: a Flask blueprint): a shop assistant's phone scans a member's card or a
coupon (the camera, through jsQR served from ``static/vendor``, or the code typed), sees what applies in this store,
and redeems with the basket amount.

Who may use it: a logged-in admin user who :meth:`~keliu.accounts.users.AdminUser.can_serve_store` — a ``staff``
user for their own store only (a staff member of store A gets 403 at store B), a store, mall or admin user for a
store they may see. The store is the staff or store user's own, else ``?store=`` or the portal's.

A member's card code is verified and used up at the scan (:func:`marketing.staff.use_card`: signed, a minute old at
most, this mall's, never twice), then the member's coupons that apply here are listed. A redemption is
:func:`marketing.store.coupons.redeem` (one transaction, a conditional update guards a single-use code) under an
idempotency key the page got when it was shown: a double tap, or the form sent again, is the same attempt and is
answered with the first answer, never a second redemption. It is then recorded for staff attribution and flags
(:func:`marketing.staff.record_redemption`).
"""
from __future__ import annotations

import io
import logging
import secrets
from typing import Any

import segno
from flask import Blueprint, abort, request, url_for

from keliu.accounts.users import AdminUser
from keliu.accounts.web import console_lang, current_user, login_required
from keliu.errors import ConfigError
from marketing import staff
from marketing.core import card, codes
from marketing.store import coupons
from marketing.store.coupons import IdempotencyMismatch, Refused
from portal.core import card_text
from portal.core import phone as ph
from portal.services import Services, services
from portal.store import members as pm
from portal.web.auth import render_console
from portal.web.member import local_until, member_phone_hash

log = logging.getLogger("keliu.portal")
bp = Blueprint("counter", __name__, url_prefix="/counter")



def _store(user: AdminUser, svc: Services) -> tuple[str, str]:
    """The store this counter serves and its mall; 403 if the user may not serve it."""
    if user.role in ("staff", "store") and user.store_id:
        store_id = user.store_id
    else:
        store_id = request.values.get("store") or svc.store_id
    try:
        mall_id = svc.cfg.store(store_id).mall
    except ConfigError:  # an unknown store: nobody may serve it
        abort(403)
    if not user.can_serve_store(store_id, mall_id):
        abort(403)
    return store_id, mall_id


def _words() -> Any:
    """The counter's own words in the console's language (the navigation's are the console's catalog's)."""
    lg = console_lang()
    return lambda k, **kw: card_text.t(lg, k, **kw)


def _reason(code: str) -> str:
    return card_text.reason(console_lang(), code)


def _page(status: int = 200, **ctx: Any) -> Any:
    ctx.setdefault("key", secrets.token_urlsafe(16))  # this attempt's idempotency key
    ctx.setdefault("basket", "")
    resp = render_console("counter/counter.html", "counter", status, ct=_words(), **ctx)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Vary"] = "Accept-Language, Cookie"
    return resp


def _ctx() -> tuple[Services, AdminUser, str, str]:
    svc = services()
    user = current_user()
    assert user is not None
    store_id, mall_id = _store(user, svc)
    return svc, user, store_id, mall_id


@bp.get("")
@login_required
def index() -> Any:
    _svc, user, store_id, _mall = _ctx()
    return _page(user=user, store=store_id)


def _coupon_view(d: coupons.CouponDetails, store_id: str) -> dict[str, Any]:
    return {"code": codes.display(d.code), "title": d.title, "kind": d.kind, "value": d.value,
            "min_spend": d.min_spend_cents / 100, "until_local": local_until(services(), d.expires_at, store_id),
            "state": d.state,
            "refusal": _reason(d.refusal) if d.refusal else None}


@bp.post("/scan")
@login_required
def scan() -> Any:
    """A scanned or typed text: a member's card code (their coupons that apply here) or a coupon code."""
    svc, user, store_id, mall_id = _ctx()
    text = request.form.get("code", "").strip()[:200]
    now = svc.now()
    if card.looks_like_card(text):
        try:
            with svc.engine.begin() as conn:
                claims = staff.use_card(conn, card.card_key(svc.keys.token), text, mall_id, store_id, user.name,
                                        now)
                phone = pm.phone_of(conn, claims.member_id)
                held = coupons.member_coupons(conn, claims.member_id, now)
                found = [coupons.coupon_details(conn, c["code"], store_id, now) for c in held
                         if c["state"] == "issued" and store_id in c["stores"]]
        except card.CardRejected as exc:
            log.info("counter %s: member code refused (%s)", store_id, exc.reason)
            return _page(exc.status, user=user, store=store_id, error=_reason(exc.code))
        return _page(user=user, store=store_id, member=ph.mask(phone) if phone else f"#{claims.member_id}",
                     coupons=[_coupon_view(d, store_id) for d in found if d is not None])
    try:
        with svc.engine.connect() as conn:
            d = coupons.coupon_details(conn, text, store_id, now)
    except codes.InvalidCode:
        return _page(404, user=user, store=store_id, error=_reason("invalid_code"), typed=text[:32])
    if d is None:
        return _page(404, user=user, store=store_id, error=_reason("unknown_code"), typed=text[:32])
    return _page(user=user, store=store_id, coupons=[_coupon_view(d, store_id)])


def _cents(raw: str) -> int | None:
    """A basket amount typed in yuan (``88``, ``88.5``, ``88.50``) as cents; None if it is not one."""
    raw = raw.strip().replace(",", "")
    whole, _, frac = raw.partition(".")
    if not whole.isdigit() or len(whole) > 9 or (frac and (not frac.isdigit() or len(frac) > 2)):
        return None
    return int(whole) * 100 + int((frac or "0").ljust(2, "0"))


@bp.post("/redeem")
@login_required
def redeem() -> Any:
    svc, user, store_id, _mall = _ctx()
    code = request.form.get("code", "")[:64]
    key = request.form.get("key", "")
    basket = _cents(request.form.get("basket", ""))
    if not (16 <= len(key) <= 64) or basket is None:
        return _page(400, user=user, store=store_id, error=_words()("c_enter_basket"),
                     again=code)
    now = svc.now()
    req = coupons.RedeemRequest(store_id=store_id, code=code, idempotency_key=key, basket_cents=basket,
                                staff=user.name, source="counter")
    try:
        out = coupons.redeem_as(svc.engine, user, req, now)
    except Refused as exc:
        return _page(exc.status, user=user, store=store_id, error=_reason(exc.reason), again=code)
    except IdempotencyMismatch:
        return _page(422, user=user, store=store_id, error=_words()("c_redeem_again"), again=code)
    if not out.replayed:
        with svc.engine.begin() as conn:
            flags = staff.record_redemption(
                conn, store_id=store_id, staff=user.name, member_id=out.member_id, reference=f"redemption:{out.id}",
                amount_cents=out.basket_cents, discount_cents=out.discount_cents, at=out.ts,
                member_phone_hash=None if out.member_id is None else member_phone_hash(conn, svc, out.member_id))
        if flags:
            log.warning("counter %s: redemption %s by %s flagged %s", store_id, out.id, user.name, ",".join(flags))
    return _page(user=user, store=store_id, done={
        "code": codes.display(out.code), "title": out.title, "basket": out.basket_cents / 100,
        "discount": out.discount_cents / 100, "pay": (out.basket_cents - out.discount_cents) / 100,
        "id": out.id, "replayed": out.replayed})


@bp.get("/card")
@login_required
def staff_card() -> Any:
    """The staff member's printable QR card: members who scan it are served by them (:mod:`marketing.staff`)."""
    svc, user, store_id, _mall = _ctx()
    with svc.engine.begin() as conn:
        sc = staff.ensure_card(conn, user.name, store_id, svc.now())
    url = svc.cfg.portal.public_url.rstrip("/") + url_for("member.staff_card", code=sc.code)
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=8, border=4, xmldecl=False)
    svg = buf.getvalue().decode()
    return render_console("counter/staff_card.html", "counter", user=user, store=store_id, url=url, svg=svg,
                          name=svc.cfg.store(store_id).name or store_id, ct=_words())
