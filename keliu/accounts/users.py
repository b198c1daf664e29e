"""Admin users and their logins (an edge: SQL): who may see the admin and the dashboards, and what of them.

Roles: ``admin`` sees everything, ``mall`` one mall (every store in it), ``store`` one store, ``staff`` serves one
store's counter (redeems coupons there) and sees no dashboard or admin page. Passwords are stored
as werkzeug hashes (scrypt). A login is a row of ``admin_sessions`` (server-side): the browser's cookie carries only
a random id, the table its SHA-256 and an expiry, so logout, a new password or the expiry end it whatever the
cookie says. The tables were created by the portal's revisions (``portal_0001``, ``portal_0004``), where their
history stays.
"""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from keliu import db
from keliu.db import TS, Base
from keliu.tenants import STORES as _stores


class AdminUserRow(Base):
    __tablename__ = "admin_users"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    #: "admin", "mall", "store", "staff"
    role: Mapped[str] = mapped_column(sa.String(8))
    mall_id: Mapped[str | None] = mapped_column(sa.ForeignKey("malls.id"))
    store_id: Mapped[str | None] = mapped_column(sa.ForeignKey("stores.id"))
    #: the password was generated for the user (the first admin's, one printed by ``keliu user add``): the next
    #: login must choose a new one before anything else (``portal_0005``)
    must_change_password: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())

class AdminSessionRow(Base):
    """A logged-in admin browser: the cookie holds a random id, this table only its SHA-256, so a copy of the
    table cannot be replayed. Logout deletes the row; a new password deletes every row of that user."""

    __tablename__ = "admin_sessions"
    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(sa.ForeignKey("admin_users.name", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS, index=True)


admin_users = cast(sa.Table, AdminUserRow.__table__)
admin_sessions = cast(sa.Table, AdminSessionRow.__table__)

Role = Literal["admin", "mall", "store", "staff"]
#: werkzeug's password hash method (scrypt); tests swap in a cheap one
HASH_METHOD = "scrypt"
ROLES: tuple[Role, ...] = ("admin", "mall", "store", "staff")


@dataclass(frozen=True)
class AdminUser:
    name: str
    role: Role
    mall_id: str | None = None
    store_id: str | None = None
    #: the user must choose a new password before any other page (see ``AdminUserRow.must_change_password``)
    must_change: bool = False

    def can_see_mall(self, mall_id: str | None) -> bool:
        if self.role == "admin":
            return True
        return self.role == "mall" and mall_id is not None and mall_id == self.mall_id

    def can_see_store(self, store_id: str | None, mall_id: str | None) -> bool:
        if self.role == "admin":
            return True
        if self.role == "mall":
            return mall_id is not None and mall_id == self.mall_id
        if self.role == "store":
            return store_id is not None and store_id == self.store_id
        return False  # staff: the counter only

    def can_serve_store(self, store_id: str | None, mall_id: str | None) -> bool:
        """May work the counter of the store (redeem coupons there): its staff, and whoever may see the store."""
        if self.role == "staff":
            return store_id is not None and store_id == self.store_id
        return self.can_see_store(store_id, mall_id)


    def can_manage(self, other: AdminUser, other_mall: str | None) -> bool:
        """May create, list, reset or remove ``other`` (whose store, if any, is in ``other_mall``): an admin
        anyone; a mall operator the store managers and staff of their own mall's stores; nobody else."""
        if self.role == "admin":
            return True
        return (self.role == "mall" and other.role in ("store", "staff") and other_mall is not None
                and other_mall == self.mall_id)


#: a user name: letters, digits and ``._@-`` (it is shown in pages and logs, and typed in a shell)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 256


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user name, or ``None`` (pure)."""
    if NAME_RE.fullmatch(name) is None:
        return "1–64 letters, digits or . _ @ - (starting with a letter or digit)"
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or ``None`` (pure): at least 10 characters, at most 256."""
    if len(password) < MIN_PASSWORD:
        return f"at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"at most {MAX_PASSWORD} characters"
    if password.strip() != password or any(ord(c) < 32 for c in password):
        return "no leading or trailing spaces, no control characters"
    return None


def _user(row: Any) -> AdminUser:
    return AdminUser(row.name, cast(Role, row.role), row.mall_id, row.store_id, bool(row.must_change_password))


# --- storage --------------------------------------------------------------------------------------------------


def create_user(engine: Engine, name: str, password: str, role: Role, mall_id: str | None = None,
                store_id: str | None = None, must_change: bool = False) -> AdminUser:
    """Create or replace an admin user. A mall user needs ``mall_id``, a store user ``store_id``. ``must_change``:
    the password was generated for the user, who must choose their own at the next login."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    if role == "mall" and not mall_id:
        raise ValueError("mall_id: required for role 'mall'")
    if role in ("store", "staff") and not store_id:
        raise ValueError(f"store_id: required for role {role!r}")
    values = {"password_hash": generate_password_hash(password, method=HASH_METHOD), "role": role, "mall_id": mall_id,
              "store_id": store_id, "must_change_password": must_change}
    with engine.begin() as conn:
        # one upsert: two processes ensuring the same user at once (workers starting together) both succeed
        stmt = db.dialect_insert(conn, admin_users).values(name=name, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=[admin_users.c.name], set_=values))
        # a new password (or role) ends every login of the user: whoever had the old one is out
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.user_name == name))
    return AdminUser(name, role, mall_id, store_id, must_change)


def ensure_user(engine: Engine, name: str, password: str, role: Role, *, generated: bool = False) -> None:
    """The first admin at start-up. A configured password (``generated=False``) is authoritative: the user is
    created, or reset when its password or role no longer match. A generated one (``var/keys/admin_password``)
    only creates a missing user, who must change it at the first login; once changed, it is never reset."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(admin_users).where(admin_users.c.name == name)).first()
    if generated:
        if row is None:
            create_user(engine, name, password, role, must_change=True)
        return
    if row is None or row.role != role or not check_password_hash(row.password_hash, password):
        create_user(engine, name, password, role)


def load_user(engine: Engine, name: str) -> AdminUser | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(admin_users).where(admin_users.c.name == name)).first()
    return None if row is None else _user(row)


def list_users(engine: Engine) -> list[AdminUser]:
    """Every user, by name. A store user's ``mall_id`` is their store's mall (so a mall operator finds them)."""
    q = (sa.select(admin_users.c.name, admin_users.c.role, admin_users.c.store_id,
                   admin_users.c.must_change_password,
                   sa.func.coalesce(admin_users.c.mall_id, _stores.c.mall_id).label("mall_id"))
         .select_from(admin_users.outerjoin(_stores, _stores.c.id == admin_users.c.store_id))
         .order_by(admin_users.c.name))
    with engine.connect() as conn:
        return [_user(r) for r in conn.execute(q)]


def set_password(engine: Engine, name: str, password: str, *, must_change: bool = False) -> bool:
    """Set ``name``'s password (``must_change``: a generated one); every login of the user ends. False: no user."""
    with engine.begin() as conn:
        n = conn.execute(sa.update(admin_users).where(admin_users.c.name == name).values(
            password_hash=generate_password_hash(password, method=HASH_METHOD), must_change_password=must_change)
        ).rowcount
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.user_name == name))
    return bool(n)


def change_password(engine: Engine, name: str, old: str, new: str) -> bool:
    """The user's own change: only with the old password. Ends every login of the user; False: wrong password."""
    if check_login(engine, name, old) is None:
        return False
    return set_password(engine, name, new)


def remove_user(engine: Engine, name: str) -> bool:
    """Delete ``name`` and their logins. False: no such user."""
    with engine.begin() as conn:
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.user_name == name))
        return bool(conn.execute(sa.delete(admin_users).where(admin_users.c.name == name)).rowcount)


def check_login(engine: Engine, name: str, password: str) -> AdminUser | None:
    dummy = _dummy_hash(HASH_METHOD)  # before the lookup: whichever login comes first pays for it, known user or not
    with engine.connect() as conn:
        row = conn.execute(sa.select(admin_users).where(admin_users.c.name == name)).first()
    if row is None:
        # same work whether or not the user exists: no user enumeration by timing
        check_password_hash(dummy, password)
        return None
    if not check_password_hash(row.password_hash, password):
        return None
    return _user(row)


@functools.cache
def _dummy_hash(method: str) -> str:
    """A hash of the method real passwords have, to check an unknown user's password against. Made at the first
    login, not at import: a scrypt hash costs about 0.2 s here (far more on a router's CPU), and every keliu process
    that imports this module (the portal, analytics, the CLI) would pay it at start."""
    return generate_password_hash("keliu-no-such-user", method=method)


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
    return None if row is None else _user(row)


def close_session(engine: Engine, sid: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(admin_sessions).where(admin_sessions.c.id_hash == _session_hash(sid)))
