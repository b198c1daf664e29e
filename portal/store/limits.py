"""Rate limits shared by every server process, counted in the database (an edge: it reads and writes rows).

Each limited thing (an IP, a device, a phone, an admin user name) becomes a keyed hash, so the table holds no
address or number. A limit is "at most ``limit`` events in the last ``window_s`` seconds"; when it is reached,
:class:`portal.errors.RateLimited` says how long to wait.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu.db import TS
from portal.errors import RateLimited
from portal.store.models import rate_events


def key_of(secret: bytes, kind: str, value: str) -> str:
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:40]


def _aware(value: object) -> datetime | None:
    if isinstance(value, str):  # SQLite's min()/max() bypass the column type
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return None


def check(conn: Connection, secret: bytes, kind: str, value: str, limit: int, window_s: int,
          now: datetime, code: str = "rate_limited") -> str:
    """Raise RateLimited if ``value`` already had ``limit`` events in the window; return its key."""
    key = key_of(secret, kind, value)
    since = now - timedelta(seconds=window_s)
    row = conn.execute(sa.select(sa.func.count(), sa.func.min(rate_events.c.ts))
                       .where(rate_events.c.key == key, rate_events.c.ts > since)).one()
    count, oldest = row
    if count >= limit:
        oldest = _aware(oldest)
        wait = window_s - (now - oldest).total_seconds() if oldest is not None else window_s
        raise RateLimited("too many requests, try again later", int(wait) + 1, code)
    return key


def count(conn: Connection, key: str, now: datetime) -> None:
    conn.execute(sa.insert(rate_events).values(key=key, ts=now))


#: count one event only if fewer than ``limit`` are in the window: check and count in one round trip (built once;
#: also the first part of the SMS check's one statement, ``portal.store.sms_login._TAKE_AND_LATEST_PG``)
TAKE = (sa.insert(rate_events)
         .from_select(["key", "ts"], sa.select(sa.bindparam("key", type_=sa.String), sa.bindparam("now", type_=TS))
                      .where(sa.select(sa.func.count()).where(rate_events.c.key == sa.bindparam("key"),
                                                              rate_events.c.ts > sa.bindparam("since", type_=TS))
                             .scalar_subquery() < sa.bindparam("limit", type_=sa.Integer)))
         .returning(rate_events.c.id))


def take(conn: Connection, secret: bytes, kind: str, value: str, limit: int, window_s: int, now: datetime,
         code: str = "rate_limited") -> None:
    """Count one event for ``value`` if it had fewer than ``limit`` in the window, else raise RateLimited (and
    count nothing). Same decision as :func:`check` then :func:`count`, in one statement."""
    key = key_of(secret, kind, value)
    counted = conn.execute(TAKE, {"key": key, "now": now, "since": now - timedelta(seconds=window_s),
                                   "limit": limit}).first()
    if counted is None:
        check(conn, secret, kind, value, limit, window_s, now, code)  # raises, with how long to wait
        raise RateLimited("too many requests, try again later", window_s, code)  # fail closed


def check_and_count(conn: Connection, secret: bytes, things: list[tuple[str, str]], limit: int, window_s: int,
                    now: datetime, code: str = "rate_limited") -> None:
    """Check every (kind, value) first, then count one event for each: a refused request counts nothing."""
    if len(things) == 1:
        kind, value = things[0]
        take(conn, secret, kind, value, limit, window_s, now, code)
        return
    keys = [check(conn, secret, kind, value, limit, window_s, now, code) for kind, value in things]
    for key in keys:
        count(conn, key, now)


def prune(conn: Connection, now: datetime, keep_s: int = 86400 * 2) -> int:
    return conn.execute(sa.delete(rate_events).where(rate_events.c.ts < now - timedelta(seconds=keep_s))).rowcount


# --- admin login: failures only, backoff per address ----------------------------------------------------------


@dataclass(frozen=True)
class Failures:
    """The failed attempts of one address (or one user name) in the window."""

    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None


#: failures after which an address has to wait before its next attempt; 1 when the user name is under attack
BACKOFF_AFTER = 3


def login_wait_s(address: Failures, name_failures: int, limit: int, window_s: int, now: datetime) -> int:
    """Seconds this address must wait before its next admin login attempt (0: it may try now). Pure.

    Only failures count. An address with no failure in the window may always try, whatever other addresses did:
    nobody can lock the real admin out of an address they have not used. After ``BACKOFF_AFTER`` failures an
    address waits 2 s after its last failure, then 4, 8... (at most the window); with ``limit`` failures in the
    window it waits until the oldest leaves it. When the name had ``limit`` failures in the window (from any
    addresses: a spread-out attack), every address backs off from its first failure.
    """
    if address.count == 0 or address.newest is None:
        return 0
    if address.count >= limit and address.oldest is not None:
        return max(1, math.ceil(window_s - (now - address.oldest).total_seconds()))
    after = 1 if name_failures >= limit else BACKOFF_AFTER
    if address.count < after:
        return 0
    backoff = min(2 ** (address.count - after + 1), window_s)
    left = backoff - (now - address.newest).total_seconds()
    return math.ceil(left) if left > 0 else 0


def failures(conn: Connection, secret: bytes, kind: str, value: str, window_s: int, now: datetime) -> Failures:
    key = key_of(secret, kind, value)
    count_, oldest, newest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(rate_events.c.ts), sa.func.max(rate_events.c.ts))
        .where(rate_events.c.key == key, rate_events.c.ts > now - timedelta(seconds=window_s))).one()
    return Failures(int(count_), _aware(oldest), _aware(newest))


def record(conn: Connection, secret: bytes, things: list[tuple[str, str]], now: datetime) -> list[int]:
    """Count one event for each (kind, value); return the rows' ids (to take a provisional failure back)."""
    return [conn.execute(sa.insert(rate_events).values(key=key_of(secret, kind, value), ts=now)
                         .returning(rate_events.c.id)).scalar_one() for kind, value in things]


def forget(conn: Connection, ids: list[int]) -> None:
    conn.execute(sa.delete(rate_events).where(rate_events.c.id.in_(ids)))
