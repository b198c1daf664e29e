"""Admin users and their logins (an edge: SQL): who may see the admin and the dashboards, and what of them.

Roles: ``admin`` sees everything, ``mall`` one mall (every store in it), ``store`` one store, ``staff`` serves one
store's counter (redeems coupons there) and sees no dashboard or admin page. Passwords are stored
as werkzeug hashes (scrypt). A login is a row of ``admin_sessions`` (server-side): the browser's cookie carries only
a random id, the table its SHA-256 and an expiry, so logout, a new password or the expiry end it whatever the
cookie says. The tables were created by the portal's revisions (``portal_0001``, ``portal_0004``), where their
history stays.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from keliu import db
from keliu.db import TS, Base


class AdminUserRow(Base):
    __tablename__ = "admin_users"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    #: "admin", "mall", "store", "staff"
    role: Mapped[str] = mapped_column(sa.String(8))
    mall_id: Mapped[str | None] = mapped_column(sa.ForeignKey("malls.id"))
    store_id: Mapped[str | None] = mapped_column(sa.ForeignKey("stores.id"))



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


# --- storage --------------------------------------------------------------------------------------------------


def create_user(engine: Engine, name: str, password: str, role: Role, mall_id: str | None = None,
                store_id: str | None = None) -> AdminUser:
    """Create or replace an admin user. A mall user needs ``mall_id``, a store user ``store_id``."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    if role == "mall" and not mall_id:
        raise ValueError("mall_id: required for role 'mall'")
    if role in ("store", "staff") and not store_id:
        raise ValueError(f"store_id: required for role {role!r}")
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
