"""API bearer tokens for POS systems and integrations (an edge: SQL).

A token is 32 random bytes (``secrets.token_urlsafe(32)``, prefixed ``kl_`` so a leaked one is recognisable); the
table ``api_tokens`` (revision ``core_0002``) keeps only its SHA-256, so a copy of the table authenticates nothing.
A token acts for one store (role ``store``) or every store of one mall (role ``mall``) with the dashboard's
tenancy rules. ``keliu token create|list|revoke`` manage them.

A server process remembers a token it has checked for :data:`CACHE_TTL_S` seconds (:class:`PrincipalCache`: the
token's hash and the store asked → the principal and the store's mall), so an API request usually costs no round
trip for its token. A revocation takes effect at once in the process that revokes (it empties the cache), and
within :data:`CACHE_TTL_S` in every other one (``keliu token revoke`` runs in its own process: the servers stop
accepting the token within 5 s). Unknown and revoked tokens are never remembered (a new token works at once, and a
flood of wrong tokens cannot fill the memory).
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu.db import TS, Base
from keliu.errors import KeliuError

TokenRole = Literal["store", "mall"]
PREFIX = "kl_"

api_tokens = sa.Table(
    "api_tokens", Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("mall_id", sa.ForeignKey("malls.id")),
    sa.Column("store_id", sa.ForeignKey("stores.id")),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS),
)


class TokenError(KeliuError):
    """A token that cannot be created or revoked as asked (unknown store or mall, name taken, no such token)."""


@dataclass(frozen=True)
class ApiPrincipal:
    """Who an API request acts as: a token's name, role and tenant."""

    name: str
    role: TokenRole
    mall_id: str
    store_id: str | None = None

    @property
    def actor(self) -> str:
        """How the ledger names this caller (``token:<name>``)."""
        return f"token:{self.name}"

    def can_act_for(self, store_id: str, mall_id: str | None) -> bool:
        """The dashboard's tenancy: a store token its store, a mall token every store of its mall."""
        if self.role == "store":
            return self.store_id == store_id
        return mall_id is not None and mall_id == self.mall_id


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    mall_id: str | None
    store_id: str | None
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(engine: Engine, *, role: TokenRole, now: datetime, store_id: str | None = None,
                 mall_id: str | None = None, name: str | None = None) -> tuple[str, str]:
    """Create a token; returns ``(name, token)``. The token is shown once: only its hash is kept."""
    if role not in ("store", "mall"):
        raise TokenError(f"role: expected store or mall, got {role!r}")
    stores = sa.table("stores", sa.column("id"), sa.column("mall_id"))
    malls = sa.table("malls", sa.column("id"))
    with engine.begin() as conn:
        if role == "store":
            if not store_id:
                raise TokenError("--store: required for role store")
            mall_id = conn.execute(sa.select(stores.c.mall_id).where(stores.c.id == store_id)).scalar()
            if mall_id is None:
                raise TokenError(f"--store: no store {store_id!r} (run keliu db first?)")
        else:
            if not mall_id or store_id:
                raise TokenError("--mall: required (and no --store) for role mall")
            if conn.execute(sa.select(malls.c.id).where(malls.c.id == mall_id)).first() is None:
                raise TokenError(f"--mall: no mall {mall_id!r}")
            store_id = None
        name = name or f"{role}-{store_id or mall_id}-{secrets.token_hex(3)}"
        if len(name) > 64:
            raise TokenError("--name: at most 64 characters")
        if conn.execute(sa.select(api_tokens.c.id).where(api_tokens.c.name == name)).first() is not None:
            raise TokenError(f"--name: a token named {name!r} exists")
        token = PREFIX + secrets.token_urlsafe(32)
        conn.execute(sa.insert(api_tokens).values(name=name, token_hash=token_hash(token), role=role,
                                                  mall_id=mall_id, store_id=store_id, created_at=now))
    return name, token


def principal(conn: Connection, token: str) -> ApiPrincipal | None:
    """The principal of a live (not revoked) token, or ``None``."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash(token),
                                                   api_tokens.c.revoked_at.is_(None))).first()
    if row is None:
        return None
    return ApiPrincipal(row.name, cast(TokenRole, row.role), row.mall_id, row.store_id)


_stores = sa.table("stores", sa.column("id"), sa.column("mall_id"))
#: built once (its SQL is compiled once and cached; psycopg prepares it after a few uses)
_PRINCIPAL_AT = sa.select(
    api_tokens.c.name, api_tokens.c.role, api_tokens.c.mall_id, api_tokens.c.store_id,
    sa.select(_stores.c.mall_id).where(_stores.c.id == sa.bindparam("store_id")).scalar_subquery()
    .label("store_mall")).where(api_tokens.c.token_hash == sa.bindparam("token_hash"),
                                api_tokens.c.revoked_at.is_(None))


def principal_at(conn: Connection, token: str, store_id: str) -> tuple[ApiPrincipal | None, str | None]:
    """:func:`principal` and the mall of ``store_id`` (``None``: no such store) in one round trip: every API
    request asks both."""
    if not token or len(token) > 200:
        return None, None
    row = conn.execute(_PRINCIPAL_AT, {"token_hash": token_hash(token), "store_id": store_id}).first()
    if row is None:
        return None, None
    return ApiPrincipal(row.name, cast(TokenRole, row.role), row.mall_id, row.store_id), row.store_mall


#: seconds a process trusts a token it has checked (a revocation elsewhere takes effect within this)
CACHE_TTL_S = 5.0
#: entries kept at most (the cache is emptied when full: tokens are few, the bound only caps memory)
CACHE_MAX = 4096


class PrincipalCache:
    """:func:`principal_at` remembered for ``ttl_s`` seconds of ``clock`` (monotonic), per engine, token hash and
    store. Only live tokens are remembered. Every cache in the process is emptied by :func:`revoke_token`."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = CACHE_MAX) -> None:
        self.ttl_s, self.clock, self.max_entries = ttl_s, clock, max_entries
        self._entries: dict[tuple[int, str, str], tuple[float, ApiPrincipal, str | None]] = {}
        with _CACHES_LOCK:
            _CACHES.add(self)

    def principal_at(self, engine: Engine, token: str, store_id: str) -> tuple[ApiPrincipal | None, str | None]:
        if not token or len(token) > 200:
            return None, None
        key = (id(engine), token_hash(token), store_id)
        now = self.clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        # one read, no transaction around it (no BEGIN and ROLLBACK round trips)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            who, mall = principal_at(conn, token, store_id)
        if who is None:
            self._entries.pop(key, None)
            return None, None
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.ttl_s, who, mall)
        return who, mall

    def clear(self) -> None:
        self._entries.clear()


#: every cache of the process (weakly: an app's cache goes with its app), for :func:`revoke_token`
_CACHES: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()
_CACHES_LOCK = threading.Lock()


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id)).all()
    return [TokenInfo(r.name, r.role, r.mall_id, r.store_id, r.created_at, r.revoked_at) for r in rows]


def revoke_token(engine: Engine, name: str, now: datetime) -> None:
    with engine.begin() as conn:
        done = conn.execute(sa.update(api_tokens).where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                            .values(revoked_at=now)).rowcount
    with _CACHES_LOCK:
        for cache in list(_CACHES):
            cache.clear()
    if not done:
        raise TokenError(f"no live token named {name!r}")
