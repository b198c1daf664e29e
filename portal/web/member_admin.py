"""Members in the admin, and the staff audit trail (an edge: a Flask blueprint over :mod:`portal.store.rights` and
:mod:`keliu.audit`).

Who sees which member is :func:`portal.store.rights.visible` (admins all; mall operators their mall's; store
managers those first seen in their store); who may correct, withdraw for or delete one is
:func:`portal.store.rights.may_change` (admins and mall operators; a phone number only admins). Every view of the
list or of a member, every export and change is recorded in the audit trail, with the user and the address. The
audit page shows admins every entry, mall operators their mall's.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from flask import Blueprint, abort, current_app, make_response, redirect, request

from keliu import audit
from keliu.accounts import i18n as console
from keliu.accounts.users import AdminUser
from keliu.accounts.web import console_lang, current_user, login_required
from marketing.errors import FieldInvalid
from marketing.store import tags as member_tags
from portal.core import phone as phones
from portal.core import rights_text
from portal.errors import PortalError
from portal.services import services
from portal.store import rights
from portal.web.auth import render_console

bp = Blueprint("member_admin", __name__, url_prefix="/admin")


def _user() -> AdminUser:
    user = current_user()
    if user is None or user.role == "staff":
        abort(403)
    return user


def _components() -> list[rights.Component]:
    return cast(list[rights.Component], current_app.extensions["keliu.member_components"])


def _record(conn: Any, user: AdminUser, action: str, member_id: int | None, detail: dict[str, Any] | None = None,
            mall_id: str | None = None) -> None:
    target = "members" if member_id is None else f"member:{member_id}"
    if member_id is not None and mall_id is None:
        mall_id = rights.mall_of(conn, member_id)
    audit.record(conn, user, action, target, request.remote_addr, detail, mall_id=mall_id, now=services().now())


@bp.get("/members")
@login_required
def members() -> Any:
    user = _user()
    svc = services()
    raw = request.args.get("phone", "").strip()
    error = None
    e164 = None
    if raw:
        try:
            e164 = phones.normalize(raw)
        except PortalError as exc:
            error = exc.message
    page = max(0, request.args.get("page", 0, type=int))
    with svc.engine.begin() as conn:
        rows = [] if error else rights.listing(conn, user, e164, limit=50, offset=50 * page)
        # a search by number is recorded as one, without the number (the trail keeps no phone)
        _record(conn, user, "member.list", None, {"search": bool(raw), "shown": len(rows), "page": page})
    return render_console("admin_members.html", "members", user=user, rows=[
        {"id": r.id, "phone": phones.mask(r.phone_e164), "wechat": bool(r.wechat_openid),
         "first_store_id": r.first_store_id, "created_at": r.created_at.strftime("%Y-%m-%d"),
         "last_seen_at": r.last_seen_at.strftime("%Y-%m-%d %H:%M")} for r in rows],
        query=raw[:32], error=error, page=page, notice=_notice())


#: what ``?done=`` says after a change (anything else says nothing)
_DONE = ("withdrawn", "corrected", "deleted", "tagged")


def _notice() -> str | None:
    done = request.args.get("done")
    return console.t(console_lang(), "done_" + done) if done in _DONE else None


def _member(conn: Any, user: AdminUser, member_id: int) -> Any:
    try:
        return rights.member_for(conn, user, member_id)
    except PortalError:
        abort(404)


@bp.get("/members/<int:member_id>")
@login_required
def member(member_id: int) -> Any:
    user = _user()
    svc = services()
    with svc.engine.begin() as conn:
        _member(conn, user, member_id)
        data = rights.export(conn, member_id, _components(), svc.now())
        held = member_tags.tags_of(conn, member_id)
        _record(conn, user, "member.view", member_id)
    return _member_page(user, member_id, data, held)


def _member_page(user: AdminUser, member_id: int, data: dict[str, Any], held: list[str],
                 tag_error: str | None = None, status: int = 200) -> Any:
    lang = console_lang()
    page = render_console("admin_member.html", "members", user=user, member_id=member_id, data=data,
                          sections=rights_text.sections(data, lang),
                          kinds=[(k, rights_text.t(lang, "kind_" + k)) for k in rights.WITHDRAWABLE],
                          may_change=rights.may_change(user), notice=_notice(), tags=held, tag_error=tag_error)
    return (page, status) if status != 200 else page


@bp.post("/members/<int:member_id>/tags")
@login_required
def tags(member_id: int) -> Any:
    """Add (``add``: a new tag) or remove (``remove``: a held one) a member's tag, for campaign segments; anyone who
    sees the member (admins, their mall's operators, their store's managers), audited."""
    user = _user()
    svc = services()
    now = svc.now()
    try:
        with svc.engine.begin() as conn:
            _member(conn, user, member_id)
            if request.form.get("add") is not None:
                changed = member_tags.set_tag(conn, member_id, request.form["add"], user.name, now)
                action = "member.tag"
            else:
                changed = member_tags.unset_tag(conn, member_id, request.form.get("remove", ""))
                action = "member.untag"
            _record(conn, user, action, member_id, {"tag": request.form.get("add", request.form.get("remove")),
                                                    "changed": changed})
    except FieldInvalid:
        with svc.engine.connect() as conn:
            data = rights.export(conn, member_id, _components(), now)
            held = member_tags.tags_of(conn, member_id)
        return _member_page(user, member_id, data, held, console.t(console_lang(), "tag_invalid"), 422)
    return redirect(f"/admin/members/{member_id}?done=tagged", 303)


@bp.get("/members/<int:member_id>/export.json")
@login_required
def export(member_id: int) -> Any:
    user = _user()
    svc = services()
    with svc.engine.begin() as conn:
        _member(conn, user, member_id)
        data = rights.export(conn, member_id, _components(), svc.now())
        _record(conn, user, "member.export", member_id, {"format": "json"})
    resp = make_response(json.dumps(data, ensure_ascii=False, indent=2))
    resp.headers["Content-Type"] = "application/json; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="keliu-member-{member_id}.json"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _changing(member_id: int) -> AdminUser:
    user = _user()
    if not rights.may_change(user):
        abort(403)
    with services().engine.connect() as conn:
        _member(conn, user, member_id)
    return user


@bp.post("/members/<int:member_id>/withdraw")
@login_required
def withdraw(member_id: int) -> Any:
    user = _changing(member_id)
    svc = services()
    kinds = request.form.getlist("kind")
    try:
        with svc.engine.begin() as conn:
            done = rights.withdraw(conn, member_id, kinds, svc.store_id, "zh-CN", svc.now())
            _record(conn, user, "member.withdraw", member_id, {"kinds": done})
    except PortalError as exc:
        abort(exc.status)
    return redirect(f"/admin/members/{member_id}?done=withdrawn", 303)


@bp.post("/members/<int:member_id>/phone")
@login_required
def correct_phone(member_id: int) -> Any:
    user = _changing(member_id)
    if user.role != "admin":
        abort(403)  # a number is changed by the member (SMS-verified) or by an admin, on record
    svc = services()
    try:
        e164 = phones.normalize(request.form.get("phone", ""))
        with svc.engine.begin() as conn:
            rights.change_phone(conn, member_id, e164)
            _record(conn, user, "member.correct", member_id, {"field": "phone", "reason": request.form.get(
                "reason", "")[:200]})
    except PortalError as exc:
        return f"<!doctype html><title>400</title><p>{exc.message}</p>", exc.status
    return redirect(f"/admin/members/{member_id}?done=corrected", 303)


@bp.post("/members/<int:member_id>/delete")
@login_required
def delete(member_id: int) -> Any:
    user = _changing(member_id)
    if request.form.get("confirm") != str(member_id):
        abort(400)
    rights.delete_member(services(), member_id, _components(), user, request.remote_addr)
    return redirect("/admin/members?done=deleted", 303)


@bp.get("/audit")
@login_required
def audit_page() -> Any:
    user = _user()
    if user.role not in ("admin", "mall"):
        abort(403)
    svc = services()
    action = request.args.get("action") or None
    day = request.args.get("day") or None
    since = None
    if day:
        try:
            since = datetime.fromisoformat(day).replace(tzinfo=svc.now().tzinfo)
        except ValueError:
            abort(400)
    rows = audit.entries(svc.engine, mall_id=None if user.role == "admin" else user.mall_id, since=since,
                         action=action, limit=500)
    return render_console("admin_audit.html", "audit", user=user, rows=rows, action=action or "", day=day or "")
