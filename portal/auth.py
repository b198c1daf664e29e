"""Identity of admin users: who is logged in to the admin and dashboards, and what they may see (an edge).

Roles: ``admin`` sees everything, ``mall`` one mall (every store in it), ``store`` one store. The contract used by
the dashboards and WeChat packages (docs/CONTRACTS.md):

- :func:`current_user` → :class:`AdminUser` or ``None``;
- :func:`login_required` — an API request (path under ``/api/`` or asking for JSON) without a login gets a 401 JSON
  body, a page gets a redirect to ``/admin/login``;
- ``user.can_see_store(store_id, mall_id)`` and ``user.can_see_mall(mall_id)``.

The demo admin (``[portal] admin_user`` with ``admin_password`` or the generated ``var/keys/admin_password``) is
written into ``admin_users`` at start-up. Failed login attempts slow down the address they come from
(:func:`portal.store.limits.login_wait_s`); successes are not counted, and no one can lock a user name out of an address
they have not used.

A login is a row of ``admin_sessions`` (server-side): the session cookie carries only a random id, the table its
SHA-256 and an expiry (``PERMANENT_SESSION_LIFETIME``, 8 h from the login). Logout deletes the row, a new password
deletes every row of the user, so a copied cookie stops working at once.
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.engine import Engine
from werkzeug.security import check_password_hash, generate_password_hash

from keliu import db
from portal.core.redirects import safe_next
from portal.services import services
from portal.store import limits
from portal.store.models import admin_sessions, admin_users
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
        # a new password (or role) ends every login of the user: whoever had the old one is out
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.user_name == name))
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


def _session_hash(sid: str) -> str:
    # the id is 256 random bits: a plain hash suffices (no guessing), and a leaked table gives no usable cookie
    return hashlib.sha256(sid.encode()).hexdigest()


def open_session(engine: Engine, name: str, now: datetime, lifetime: timedelta) -> str:
    """Record a login of ``name`` until ``now + lifetime``; return the random id for the cookie."""
    sid = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.expires_at <= now))
        conn.execute(sa.insert(admin_sessions).values(id_hash=_session_hash(sid), user_name=name, created_at=now,
                                                      expires_at=now + lifetime))
    return sid


def session_user(engine: Engine, sid: str, now: datetime) -> AdminUser | None:
    """The user of a live session id, or ``None`` (unknown, logged out, revoked or expired)."""
    q = (sa.select(admin_users).join(admin_sessions, admin_sessions.c.user_name == admin_users.c.name)
         .where(admin_sessions.c.id_hash == _session_hash(sid), admin_sessions.c.expires_at > now))
    with engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        return None
    return AdminUser(row.name, cast(Role, row.role), row.mall_id, row.store_id)


def close_session(engine: Engine, sid: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.id_hash == _session_hash(sid)))


# --- request helpers ------------------------------------------------------------------------------------------


def current_user() -> AdminUser | None:
    """The admin user of this request, or ``None``."""
    if "admin_user" in g:
        return cast("AdminUser | None", g.admin_user)
    sid = session.get("admin_sid")
    user = None
    if isinstance(sid, str) and sid:
        svc = services()
        user = session_user(svc.engine, sid, svc.now())
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


def next_page() -> str:
    """Where to go after the login: ``?next=`` if it is a local path (:func:`portal.core.redirects.safe_next`)."""
    return safe_next(request.args.get("next"), "/admin")


# --- views ----------------------------------------------------------------------------------------------------

bp = Blueprint("auth", __name__)


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")[:64]
        password = request.form.get("password", "")[:256]
        svc = services()
        per, window, now = svc.cfg.portal.admin_login_per_15min, 900, svc.now()
        address = request.remote_addr or ""
        secret = svc.keys.token
        with svc.engine.begin() as conn:
            wait = limits.login_wait_s(limits.failures(conn, secret, "admin-fail-ip", address, window, now),
                                       limits.failures(conn, secret, "admin-fail-user", name, window, now).count,
                                       per, window, now)
            # counted as a failure before the (slow) password check and taken back on success, so that attempts
            # from one address running in parallel mostly see each other (only those checking at the same instant
            # do not)
            pending = [] if wait else limits.record(conn, secret, [("admin-fail-ip", address),
                                                                   ("admin-fail-user", name)], now)
        if wait:
            return render_template("admin_login.html", error="too many attempts, try again later",
                                   next=next_page()), 429, {"Retry-After": str(wait)}
        user = check_login(svc.engine, name, password)
        if user is not None:
            # a success is not counted, and does not wipe this address's failures either: else any user with a
            # login of their own could reset their address's backoff between guesses at another name
            with svc.engine.begin() as conn:
                limits.forget(conn, pending)
            session.clear()
            session["admin_sid"] = open_session(svc.engine, user.name, now, current_app.permanent_session_lifetime)
            session.permanent = True
            return redirect(next_page())
        error = "wrong user name or password"
    return render_template("admin_login.html", error=error, next=next_page()), (
        401 if error else 200)


@bp.route("/admin/logout", methods=["POST"])
def logout() -> Any:
    from portal.services import services

    sid = session.get("admin_sid")
    if isinstance(sid, str) and sid:
        close_session(services().engine, sid)
    session.clear()
    g.pop("admin_user", None)
    return redirect(url_for("auth.login"))


def require_store(store_id: str, mall_id: str | None) -> AdminUser:
    user = current_user()
    if user is None or not user.can_see_store(store_id, mall_id):
        abort(403)
    return user
