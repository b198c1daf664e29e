"""The audit trail of staff (an edge: SQL): who looked at members, exported them, kicked clients, changed splash
pages, offers, campaigns or tokens, when and from where.

One append-only table, ``staff_audit``: nothing in keliu updates or deletes a row, and the database refuses it
too (revision ``audit_0001``: a trigger on PostgreSQL and on SQLite raises on ``UPDATE`` and ``DELETE``, and on
PostgreSQL on ``TRUNCATE``). Every component records through one call, from the shared base, so none needs
another's code for it::

    from keliu import audit
    audit.record(conn_or_engine, user, "offer.create", "offer:42", request.remote_addr, {"title": "…"})

``user`` is a :class:`keliu.accounts.users.AdminUser` (its role, mall and store are kept with the row, so a mall
operator sees the entries of their mall) or a plain name (``"cli:root"``). ``target`` names the thing acted on by
its id (``"member:17"``, ``"session:3"``, ``"store:s1"``), never by a phone number or a MAC: the trail outlives a
member's deletion and must hold nothing that identifies them. ``detail`` is a small JSON-able dict, under the same
rule.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from keliu.accounts.users import AdminUser
from keliu.db import TS, Base


class AuditRow(Base):
    """One action of one staff user. Appended, never changed (see the module docstring)."""

    __tablename__ = "staff_audit"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(TS, index=True)
    user_name: Mapped[str] = mapped_column(sa.String(64))
    #: the user's role then ("admin", "mall", "store", "staff"; "cli" for the command line)
    role: Mapped[str] = mapped_column(sa.String(8))
    #: the mall and store the action concerns (None: not one mall's), which decide who may read the row
    mall_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    store_id: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str] = mapped_column(sa.String(128))
    #: the client address of the request ("local" for the command line)
    address: Mapped[str] = mapped_column(sa.String(64))
    detail: Mapped[str] = mapped_column(sa.Text)


staff_audit = cast(sa.Table, AuditRow.__table__)

#: the actions keliu records today (other strings are allowed: a component adds its own, ``<area>.<verb>``)
ACTIONS = ("member.list", "member.view", "member.export", "member.correct", "member.delete", "member.withdraw",
           "member.import", "session.kick", "session.extend", "splash.update", "audit.view",
           "offer.create", "offer.update", "campaign.create", "campaign.update", "campaign.approve",
           "campaign.pause", "campaign.archive", "token.create")


@dataclass(frozen=True)
class Entry:
    id: int
    ts: datetime
    user_name: str
    role: str
    mall_id: str | None
    store_id: str | None
    action: str
    target: str
    address: str
    detail: dict[str, Any]


@contextlib.contextmanager
def _tx(conn_or_engine: Any) -> Iterator[sa.Connection]:
    if isinstance(conn_or_engine, sa.Connection):
        yield conn_or_engine
    else:
        with conn_or_engine.begin() as conn:
            yield conn


def record(conn_or_engine: Any, user: AdminUser | str, action: str, target: str, address: str | None,
           detail: Mapping[str, Any] | None = None, *, mall_id: str | None = None, store_id: str | None = None,
           now: datetime | None = None) -> None:
    """Append one entry. Given a Connection, the entry is written in the caller's transaction (it stands or falls
    with the action); given an Engine, in its own. ``mall_id``/``store_id`` default to the user's own."""
    role: str
    if isinstance(user, AdminUser):
        name, role = user.name, user.role
        mall_id = mall_id if mall_id is not None else user.mall_id
        store_id = store_id if store_id is not None else user.store_id
    else:
        name, role = str(user), "cli" if str(user).startswith("cli:") else "system"
    if not action or len(action) > 64:
        raise ValueError(f"action: 1 to 64 characters, not {action!r}")
    when = now if now is not None else datetime.now(UTC)
    with _tx(conn_or_engine) as conn:
        conn.execute(sa.insert(staff_audit).values(
            ts=when, user_name=name[:64], role=role[:8], mall_id=mall_id, store_id=store_id, action=action,
            target=target[:128], address=(address or "")[:64],
            detail=json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, default=str)))


def entries(conn_or_engine: Any, *, mall_id: str | None = None, since: datetime | None = None,
            until: datetime | None = None, action: str | None = None, user_name: str | None = None,
            limit: int = 200) -> list[Entry]:
    """The newest entries first. ``mall_id``: only that mall's (what a mall operator may see)."""
    t = staff_audit
    q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if mall_id is not None:
        q = q.where(t.c.mall_id == mall_id)
    if since is not None:
        q = q.where(t.c.ts >= since)
    if until is not None:
        q = q.where(t.c.ts < until)
    if action is not None:
        q = q.where(t.c.action == action)
    if user_name is not None:
        q = q.where(t.c.user_name == user_name)
    with _tx(conn_or_engine) as conn:
        rows = conn.execute(q).all()
    return [Entry(r.id, r.ts, r.user_name, r.role, r.mall_id, r.store_id, r.action, r.target, r.address,
                  json.loads(r.detail or "{}")) for r in rows]
