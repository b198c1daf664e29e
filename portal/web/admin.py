"""The portal's admin (an edge): online clients, kick, extend, and each store's splash content. Kicks, extensions
and splash edits are recorded in the staff audit trail (:mod:`keliu.audit`), with the user and the address.

Store managers see their store, mall operators their mall, admins everything (:mod:`keliu.accounts`). Phones are
shown masked; devices by their HMAC id. Every form carries a CSRF token (``CSRFProtect`` in the factory).
"""
from __future__ import annotations

import re
from typing import Any, cast

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from keliu import audit
from keliu.accounts.users import AdminUser
from keliu.accounts.web import current_user, login_required
from keliu.tenants import Store
from portal.core import phone
from portal.services import services
from portal.store import access
from portal.store.models import members, portal_sessions, splash_content

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
@login_required
def index() -> Any:
    user = current_user()
    assert user is not None
    svc = services()
    with svc.engine.connect() as conn:
        visible = conn.execute(sa.select(stores).where(_visible(user)).order_by(stores.c.id)).all()
    return render_template("admin.html", user=user, rows=online(user), stores=visible, notice=request.args.get("done"))


@bp.route("/sessions/<int:session_id>/kick", methods=["POST"])
@login_required
def kick(session_id: int) -> Any:
    user = current_user()
    assert user is not None
    store_id, mall_id = _session_visible(user, session_id)
    svc = services()
    if access.kick(svc, session_id, svc.now()):
        audit.record(svc.engine, user, "session.kick", f"session:{session_id}", request.remote_addr,
                     mall_id=mall_id, store_id=store_id, now=svc.now())
    return redirect("/admin?done=kicked", 303)


@bp.route("/sessions/<int:session_id>/extend", methods=["POST"])
@login_required
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
    return redirect("/admin?done=extended", 303)


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
    color = StringField("color", validators=[FullMatch(r"#[0-9a-fA-F]{6}", message="colour as #rrggbb")])


@bp.route("/splash/<store_id>", methods=["GET", "POST"])
@login_required
def splash(store_id: str) -> Any:
    user = current_user()
    assert user is not None
    svc = services()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", store_id):
        abort(404)
    with svc.engine.connect() as conn:
        st = conn.execute(sa.select(stores).where(stores.c.id == store_id)).first()
        cur = conn.execute(sa.select(splash_content).where(splash_content.c.store_id == store_id)).first()
    if st is None:
        abort(404)
    if not user.can_see_store(st.id, st.mall_id):
        abort(403)
    form = SplashForm(data={"title": cur.title if cur else st.name, "offer": cur.offer if cur else "",
                            "color": cur.color if cur else "#d9363e"} if request.method == "GET" else None)
    if request.method == "POST":
        if not form.validate():
            return render_template("admin_splash.html", form=form, store_id=store_id,
                                   error="; ".join(e for errs in form.errors.values() for e in errs)), 400
        values = {"title": form.title.data or "", "offer": form.offer.data or "", "color": form.color.data,
                  "updated_at": svc.now(), "updated_by": user.name}
        with svc.engine.begin() as conn:
            if cur is None:
                conn.execute(sa.insert(splash_content).values(store_id=store_id, **values))
            else:
                conn.execute(sa.update(splash_content).where(splash_content.c.store_id == store_id).values(**values))
            audit.record(conn, user, "splash.update", f"store:{store_id}", request.remote_addr,
                         {"title": values["title"], "offer": values["offer"], "color": values["color"]},
                         mall_id=st.mall_id, store_id=store_id, now=values["updated_at"])
        return redirect("/admin?done=saved", 303)
    return render_template("admin_splash.html", form=form, store_id=store_id, error=None)
