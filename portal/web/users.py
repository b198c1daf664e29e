"""The console's user pages (an edge: Flask over :mod:`keliu.accounts.users`): ``/admin/users``.

An admin manages every user; a mall operator the store managers and staff of their own mall's stores, and nobody
else (:meth:`keliu.accounts.users.AdminUser.can_manage`); others get 403. A new user, or a reset, gets a generated
password shown once on the answer page (never in a URL) that must be changed at the first login. No one removes
themselves or the last admin.
"""
from __future__ import annotations

import secrets
from typing import Any, cast

import sqlalchemy as sa
from flask import Blueprint, abort, request

from keliu.accounts import i18n as console
from keliu.accounts.users import (
    AdminUser,
    Role,
    create_user,
    list_users,
    load_user,
    name_problem,
    remove_user,
    set_password,
)
from keliu.accounts.web import console_lang, console_required, current_user
from keliu.tenants import MALLS, STORES
from portal.services import services
from portal.web.auth import render_console

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def _manager() -> AdminUser:
    user = current_user()
    assert user is not None
    if user.role not in ("admin", "mall"):
        abort(403)
    return user


def _tenants() -> tuple[list[Any], list[Any]]:
    with services().engine.connect() as conn:
        malls = list(conn.execute(sa.select(MALLS).order_by(MALLS.c.id)).all())
        stores = list(conn.execute(sa.select(STORES).order_by(STORES.c.id)).all())
    return malls, stores


def _page(me: AdminUser, status: int = 200, notice: str | None = None, error: str | None = None) -> Any:
    malls, stores = _tenants()
    users = [u for u in list_users(services().engine) if me.can_manage(u, u.mall_id)]
    roles = ["store", "staff", "mall", "admin"] if me.role == "admin" else ["store", "staff"]
    return render_console("admin_users.html", "users", status, me=me, users=users, roles=roles,
                          malls=[m for m in malls if me.role == "admin"],
                          stores=[s for s in stores if me.role == "admin" or s.mall_id == me.mall_id],
                          mall_names={m.id: m.name or m.id for m in malls},
                          store_names={s.id: s.name or s.id for s in stores}, notice=notice, error=error)


@bp.get("")
@console_required
def index() -> Any:
    return _page(_manager())


@bp.post("")
@console_required
def add() -> Any:
    me = _manager()
    lang = console_lang()
    name = request.form.get("name", "").strip()[:64]
    role = request.form.get("role", "")
    mall_id = request.form.get("mall") or None
    store_id = request.form.get("store") or None
    if name_problem(name):
        return _page(me, 400, error=console.t(lang, "err_name"))
    _malls, stores = _tenants()
    mall_of = {s.id: s.mall_id for s in stores}
    if role == "mall":
        store_id = None
        ok = mall_id is not None and any(m.id == mall_id for m in _malls)
    elif role in ("store", "staff"):
        mall_id = mall_of.get(store_id or "")
        ok = store_id is not None and mall_id is not None
    else:
        mall_id = store_id = None
        ok = role == "admin"
    if not ok:
        return _page(me, 400, error=console.t(lang, "err_scope"))
    target = AdminUser(name, cast(Role, role), mall_id, store_id)
    if not me.can_manage(target, mall_id):
        abort(403)
    engine = services().engine
    if load_user(engine, name) is not None:
        return _page(me, 400, error=console.t(lang, "err_exists"))
    password = secrets.token_urlsafe(12)
    create_user(engine, name, password, cast(Role, role), mall_id=mall_id, store_id=store_id, must_change=True)
    return _page(me, notice=console.t(lang, "user_added", name=name, password=password))


def _target(me: AdminUser, name: str) -> AdminUser:
    target = next((u for u in list_users(services().engine) if u.name == name), None)
    if target is None:
        abort(404)
    if not me.can_manage(target, target.mall_id):
        abort(403)
    return target


@bp.post("/<name>/password")
@console_required
def reset(name: str) -> Any:
    me = _manager()
    target = _target(me, name)
    password = secrets.token_urlsafe(12)
    set_password(services().engine, target.name, password, must_change=True)
    return _page(me, notice=console.t(console_lang(), "user_reset", name=target.name, password=password))


@bp.post("/<name>/remove")
@console_required
def remove(name: str) -> Any:
    me = _manager()
    lang = console_lang()
    target = _target(me, name)
    engine = services().engine
    if target.name == me.name:
        return _page(me, 400, error=console.t(lang, "err_self"))
    if target.role == "admin" and sum(u.role == "admin" for u in list_users(engine)) <= 1:
        return _page(me, 400, error=console.t(lang, "err_last_admin"))
    remove_user(engine, target.name)
    return _page(me, notice=console.t(lang, "user_removed", name=target.name))
