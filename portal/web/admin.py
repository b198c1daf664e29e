"""The portal's admin (an edge): online clients, kick, extend, and each store's splash page: the zh-CN and English
title and offer, the accent colour, a logo, the store's terms page and a phone-size preview. Kicks,
extensions and splash edits are recorded in the staff audit trail (:mod:`keliu.audit`), with the user and the
address.

Store managers see their store, mall operators their mall, admins everything (:mod:`keliu.accounts`); staff none
of it (403). Phones are shown masked; devices by their HMAC id. Every form carries a CSRF token (``CSRFProtect`` in
the factory). Pages are drawn by :func:`portal.web.auth.render_console` (the console's navigation and language).
"""
from __future__ import annotations

import re
from typing import Any, cast

import sqlalchemy as sa
from flask import Blueprint, abort, make_response, redirect, render_template, request
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from keliu import audit
from keliu.accounts import i18n as console
from keliu.accounts.users import AdminUser
from keliu.accounts.web import console_lang, console_required, current_user
from keliu.tenants import Store
from portal.core import i18n, phone
from portal.core.terms import DEFAULT_TERMS, LOGO_MAX, MAX_TERMS, logo_type
from portal.services import services
from portal.store import access
from portal.store.models import members, portal_sessions, splash_content
from portal.web.auth import render_console
from portal.web.terms import logo_response

bp = Blueprint("admin", __name__, url_prefix="/admin")
stores = cast(sa.Table, Store.__table__)


def _visible(user: AdminUser) -> Any:
    if user.role == "admin":
        return sa.true()
    if user.role == "mall":
        return stores.c.mall_id == user.mall_id
    if user.role == "store":
        return stores.c.id == user.store_id
    return sa.false()  # staff work the counter, not the admin


def online(user: AdminUser) -> list[dict[str, Any]]:
    svc = services()
    now = svc.now()
    traffic = {svc.device_of(c.mac): c for c in svc.gate.clients()}
    q = (sa.select(portal_sessions, members.c.phone_e164)
         .join(members, members.c.id == portal_sessions.c.member_id)
         .join(stores, stores.c.id == portal_sessions.c.store_id)
         .where(portal_sessions.c.ended_at.is_(None), portal_sessions.c.until > now, _visible(user))
         .order_by(portal_sessions.c.started_at.desc()))
    with svc.engine.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        c = traffic.get(r.device_id)
        out.append({"id": r.id, "store_id": r.store_id, "phone": phone.mask(r.phone_e164), "device_id": r.device_id,
                    "since": r.started_at.strftime("%Y-%m-%d %H:%M"), "until": r.until.strftime("%Y-%m-%d %H:%M"),
                    "bytes_up": c.bytes_up if c else r.bytes_up, "bytes_down": c.bytes_down if c else r.bytes_down})
    return out


def _session_visible(user: AdminUser, session_id: int) -> tuple[str, str]:
    svc = services()
    with svc.engine.connect() as conn:
        row = conn.execute(sa.select(stores.c.id, stores.c.mall_id)
                           .join(portal_sessions, portal_sessions.c.store_id == stores.c.id)
                           .where(portal_sessions.c.id == session_id)).first()
    if row is None:
        abort(404)
    if not user.can_see_store(row.id, row.mall_id):
        abort(403)
    return str(row.id), str(row.mall_id)


@bp.route("")
@console_required
def index() -> Any:
    user = current_user()
    assert user is not None
    svc = services()
    with svc.engine.connect() as conn:
        visible = conn.execute(sa.select(stores).where(_visible(user)).order_by(stores.c.id)).all()
    done = request.args.get("done")
    notice = console.t(console_lang(), f"done_{done}") if done in ("kicked", "extended", "saved") else None
    return render_console("admin.html", "online", user=user, rows=online(user), stores=visible, notice=notice)


@bp.route("/sessions/<int:session_id>/kick", methods=["POST"])
@console_required
def kick(session_id: int) -> Any:
    user = current_user()
    assert user is not None
    store_id, mall_id = _session_visible(user, session_id)
    svc = services()
    if access.kick(svc, session_id, svc.now()):
        audit.record(svc.engine, user, "session.kick", f"session:{session_id}", request.remote_addr,
                     mall_id=mall_id, store_id=store_id, now=svc.now())
    return redirect(f"/admin?done=kicked&lang={console_lang()}", 303)


@bp.route("/sessions/<int:session_id>/extend", methods=["POST"])
@console_required
def extend(session_id: int) -> Any:
    user = current_user()
    assert user is not None
    store_id, mall_id = _session_visible(user, session_id)
    try:
        minutes = int(request.form.get("minutes", "60"))
    except ValueError:
        abort(400)
    if not 1 <= minutes <= 24 * 60:
        abort(400)
    svc = services()
    if access.extend(svc, session_id, minutes, svc.now()) is not None:
        audit.record(svc.engine, user, "session.extend", f"session:{session_id}", request.remote_addr,
                     {"minutes": minutes}, mall_id=mall_id, store_id=store_id, now=svc.now())
    return redirect(f"/admin?done=extended&lang={console_lang()}", 303)


class FullMatch:
    """A WTForms validator: the whole value matches ``pattern`` (WTForms' ``Regexp`` uses ``re.match``, where a
    ``$`` also accepts a final newline; that newline then overflowed a ``String(7)`` column on PostgreSQL)."""

    def __init__(self, pattern: str, message: str) -> None:
        self.pattern = re.compile(pattern)
        self.message = message

    def __call__(self, _form: Any, field: Any) -> None:
        if not isinstance(field.data, str) or self.pattern.fullmatch(field.data) is None:
            raise ValidationError(self.message)


class SplashForm(FlaskForm):  # type: ignore[misc]
    title = StringField("title", validators=[Length(max=100)])
    offer = TextAreaField("offer", validators=[Length(max=500)])
    title_en = StringField("title_en", validators=[Length(max=100)])
    offer_en = TextAreaField("offer_en", validators=[Length(max=500)])
    terms_zh = TextAreaField("terms_zh", validators=[Length(max=MAX_TERMS)])
    terms_en = TextAreaField("terms_en", validators=[Length(max=MAX_TERMS)])
    color = StringField("color", validators=[FullMatch(r"#[0-9a-fA-F]{6}", message="colour as #rrggbb")])


def allow_logo_upload() -> None:
    """Run before the CSRF check reads the form (the factory registers it first): the splash editor's post may
    carry a logo, up to :data:`LOGO_MAX` plus the form; every other request keeps the app's small limit."""
    if request.method == "POST" and request.endpoint == "admin.splash":
        request.max_content_length = LOGO_MAX + 64 * 1024


def _store_of(user: AdminUser, store_id: str) -> Any:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", store_id):
        abort(404)
    with services().engine.connect() as conn:
        st = conn.execute(sa.select(stores).where(stores.c.id == store_id)).first()
    if st is None:
        abort(404)
    if not user.can_see_store(st.id, st.mall_id):
        abort(403)
    return st


@bp.route("/splash")
@console_required
def splash_list() -> Any:
    user = current_user()
    assert user is not None
    with services().engine.connect() as conn:
        visible = conn.execute(sa.select(stores).where(_visible(user)).order_by(stores.c.id)).all()
    if len(visible) == 1:
        return redirect(f"/admin/splash/{visible[0].id}?lang={console_lang()}")
    return render_console("admin_splash_list.html", "splash", stores=visible)


def _errors(lang: str, form: SplashForm) -> list[str]:
    names = {"title": "title_field", "offer": "offer_field", "title_en": "title_field", "offer_en": "offer_field",
             "terms_zh": "terms_field", "terms_en": "terms_field"}
    out = []
    for field in form.errors:
        if field == "color":
            out.append(console.t(lang, "err_color"))
        elif field in names:
            out.append(console.t(lang, "err_too_long", field=console.t(lang, names[field])))
        else:
            out.append(console.t(lang, "forbidden"))
    return out


@bp.route("/splash/<store_id>", methods=["GET", "POST"])
@console_required
def splash(store_id: str) -> Any:
    user = current_user()
    assert user is not None
    svc = services()
    st = _store_of(user, store_id)
    with svc.engine.connect() as conn:
        cur = conn.execute(sa.select(splash_content).where(splash_content.c.store_id == store_id)).first()
    lang = console_lang()
    data = {"title": cur.title if cur else st.name, "offer": cur.offer if cur else "",
            "title_en": cur.title_en if cur else "", "offer_en": cur.offer_en if cur else "",
            "terms_zh": cur.terms_zh if cur else "", "terms_en": cur.terms_en if cur else "",
            "color": cur.color if cur else "#d9363e"}
    form = SplashForm(data=data if request.method == "GET" else None)
    page = {"form": form, "store": st, "has_logo": bool(cur and cur.logo), "logo_kb": LOGO_MAX // 1024,
            "default_terms": DEFAULT_TERMS}
    if request.method == "POST":
        errors = [] if form.validate() else _errors(lang, form)
        upload = request.files.get("logo")
        logo: tuple[bytes, str] | None = None
        if upload is not None and upload.filename:
            blob = upload.stream.read(LOGO_MAX + 1)
            kind = logo_type(blob)
            if len(blob) > LOGO_MAX:
                errors.append(console.t(lang, "err_logo_size", kb=LOGO_MAX // 1024))
            elif kind is None:
                errors.append(console.t(lang, "err_logo_type"))
            else:
                logo = (blob, kind)
        if errors:
            return render_console("admin_splash.html", "splash", 400, error="; ".join(errors), **page)
        values: dict[str, Any] = {k: (getattr(form, k).data or "").strip() if k.startswith("terms") else
                                  (getattr(form, k).data or "") for k in data if k != "color"}
        values |= {"color": form.color.data.lower(), "updated_at": svc.now(), "updated_by": user.name}
        if logo is not None:
            values |= {"logo": logo[0], "logo_type": logo[1]}
        elif request.form.get("logo_remove") == "1":
            values |= {"logo": None, "logo_type": None}
        with svc.engine.begin() as conn:
            if cur is None:
                conn.execute(sa.insert(splash_content).values(store_id=store_id, **values))
            else:
                conn.execute(sa.update(splash_content).where(splash_content.c.store_id == store_id).values(**values))
            audit.record(conn, user, "splash.update", f"store:{store_id}", request.remote_addr,
                         {k: values[k] for k in ("title", "title_en", "offer", "offer_en", "color") if k in values},
                         mall_id=st.mall_id, store_id=store_id, now=values["updated_at"])
        return redirect(f"/admin/splash/{store_id}?done=saved&lang={lang}", 303)
    notice = console.t(lang, "done_saved") if request.args.get("done") == "saved" else None
    return render_console("admin_splash.html", "splash", error=None, notice=notice, **page)


@bp.get("/splash/<store_id>/logo")
@console_required
def splash_logo(store_id: str) -> Any:
    user = current_user()
    assert user is not None
    _store_of(user, store_id)
    return logo_response(store_id)


@bp.get("/splash/<store_id>/preview")
@console_required
def splash_preview(store_id: str) -> Any:
    """The store's splash as a phone shows it (what is saved), for the editor's frame: same-origin framing only,
    and the frame is sandboxed (no script, no form submission)."""
    user = current_user()
    assert user is not None
    svc = services()
    st = _store_of(user, store_id)
    lg = str(request.args["lang"]) if request.args.get("lang") in i18n.LANGS else i18n.DEFAULT
    with svc.engine.connect() as conn:
        row = conn.execute(sa.select(splash_content).where(splash_content.c.store_id == store_id)).first()
    en = lg == "en"
    c = {"title": st.name, "offer": "", "color": "#d9363e", "logo": None}
    if row is not None:
        c = {"title": row.title_en if en and row.title_en else row.title,
             "offer": row.offer_en if en and row.offer_en else row.offer, "color": row.color,
             "logo": f"/admin/splash/{store_id}/logo?v={int(row.updated_at.timestamp())}" if row.logo else None}
    html = render_template("splash.html", lang=lg, t=lambda k, **kw: i18n.gettext(lg, k, **kw), content=c,
                           color=c["color"], error=None, notice=None, phone=None,
                           reauth_days=svc.cfg.portal.reauth_days, wechat=svc.cfg.wechat.enabled)
    resp = make_response(html)
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'none'; style-src 'self' "
                                               "'unsafe-inline'; img-src 'self'; object-src 'none'; base-uri 'none'; "
                                               "frame-ancestors 'self'")
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    resp.headers["Cache-Control"] = "no-store"
    return resp
