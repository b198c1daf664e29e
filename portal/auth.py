"""Identity of admin users: who is logged in to the admin and dashboards, and what they may see (an edge).

Roles: ``admin`` sees everything, ``mall`` one mall (every store in it), ``store`` one store. The contract used by
the dashboards and WeChat packages (docs/CONTRACTS.md):

- :func:`current_user` → :class:`AdminUser` or ``None``;
- :func:`login_required` — an API request (path under ``/api/`` or asking for JSON) without a login gets a 401 JSON
  body, a page gets a redirect to ``/admin/login``;
- ``user.can_see_store(store_id, mall_id)`` and ``user.can_see_mall(mall_id)``.

The demo admin (``[portal] admin_user`` with ``admin_password`` or the generated ``var/keys/admin_password``) is
written into ``admin_users`` at start-up. Login attempts are rate-limited per IP and per user name.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
from flask import Blueprint, abort, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy.engine import Engine
from werkzeug.security import check_password_hash, generate_password_hash

from keliu import db
from portal.errors import RateLimited
from portal.services import services
from portal.store import limits
from portal.store.models import admin_users
from portal.web.pages import wants_json

Role = Literal["admin", "mall", "store"]
#: werkzeug's password hash method (scrypt); tests swap in a cheap one
HASH_METHOD = "scrypt"
ROLES: tuple[Role, ...] = ("admin", "mall", "store")


@dataclass(frozen=True)
class AdminUser:
    name: str
    role: Role
    mall_id: str | None = None
    store_id: str | None = None

    def can_see_mall(self, mall_id: str | None) -> bool:
        if self.role == "admin":
            return True
        return self.role == "mall" and mall_id is not None and mall_id == self.mall_id

    def can_see_store(self, store_id: str | None, mall_id: str | None) -> bool:
        if self.role == "admin":
            return True
        if self.role == "mall":
            return mall_id is not None and mall_id == self.mall_id
        return store_id is not None and store_id == self.store_id


# --- storage --------------------------------------------------------------------------------------------------


def create_user(engine: Engine, name: str, password: str, role: Role, mall_id: str | None = None,
                store_id: str | None = None) -> AdminUser:
    """Create or replace an admin user. A mall user needs ``mall_id``, a store user ``store_id``."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    if role == "mall" and not mall_id:
        raise ValueError("mall_id: required for role 'mall'")
    if role == "store" and not store_id:
        raise ValueError("store_id: required for role 'store'")
    values = {"password_hash": generate_password_hash(password, method=HASH_METHOD), "role": role, "mall_id": mall_id,
              "store_id": store_id}
    with engine.begin() as conn:
        # one upsert: two processes ensuring the same user at once (workers starting together) both succeed
        stmt = db.dialect_insert(conn, admin_users).values(name=name, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=[admin_users.c.name], set_=values))
    return AdminUser(name, role, mall_id, store_id)


def ensure_user(engine: Engine, name: str, password: str, role: Role) -> None:
    """Create the user, or reset it when its password or role no longer match (the demo admin at start-up)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(admin_users).where(admin_users.c.name == name)).first()
    if row is None or row.role != role or not check_password_hash(row.password_hash, password):
        create_user(engine, name, password, role)


def load_user(engine: Engine, name: str) -> AdminUser | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(admin_users).where(admin_users.c.name == name)).first()
    if row is None:
        return None
    return AdminUser(row.name, cast(Role, row.role), row.mall_id, row.store_id)


def check_login(engine: Engine, name: str, password: str) -> AdminUser | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(admin_users).where(admin_users.c.name == name)).first()
    if row is None:
        # same work whether or not the user exists: no user enumeration by timing
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(row.password_hash, password):
        return None
    return AdminUser(row.name, cast(Role, row.role), row.mall_id, row.store_id)


_DUMMY_HASH = generate_password_hash("keliu-no-such-user")


# --- request helpers ------------------------------------------------------------------------------------------


def current_user() -> AdminUser | None:
    """The admin user of this request, or ``None``."""
    if "admin_user" in g:
        return cast("AdminUser | None", g.admin_user)
    name = session.get("admin")
    user = None
    if isinstance(name, str):
        user = load_user(services().engine, name)
    g.admin_user = user
    return user


F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if wants_json():
                return jsonify(error="login_required", message="log in to the admin first"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def safe_next(target: str | None) -> str:
    """Only a local path is accepted as the place to go after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/admin"
    return target


# --- views ----------------------------------------------------------------------------------------------------

bp = Blueprint("auth", __name__)


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")[:64]
        password = request.form.get("password", "")[:256]
        svc = services()
        per = svc.cfg.portal.admin_login_per_15min
        try:
            with svc.engine.begin() as conn:
                limits.check_and_count(conn, svc.keys.token, [("admin-ip", request.remote_addr or ""),
                                                              ("admin-user", name)], per, 900, svc.now())
        except RateLimited as exc:
            return render_template("admin_login.html", error="too many attempts, try again later",
                                   next=safe_next(request.args.get("next"))), 429, {"Retry-After": str(exc.retry_after)}
        user = check_login(svc.engine, name, password)
        if user is not None:
            session.clear()
            session["admin"] = user.name
            session.permanent = True
            return redirect(safe_next(request.args.get("next")))
        error = "wrong user name or password"
    return render_template("admin_login.html", error=error, next=safe_next(request.args.get("next"))), (
        401 if error else 200)


@bp.route("/admin/logout", methods=["POST"])
def logout() -> Any:
    session.pop("admin", None)
    return redirect(url_for("auth.login"))


def require_store(store_id: str, mall_id: str | None) -> AdminUser:
    user = current_user()
    if user is None or not user.can_see_store(store_id, mall_id):
        abort(403)
    return user
