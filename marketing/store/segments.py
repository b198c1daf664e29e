"""A segment in SQL (an edge: SQL).

:func:`conditions` renders a segment (:class:`marketing.core.campaign_spec.Condition`s, the predicate
:func:`marketing.core.campaign_spec.matches` evaluates on plain values) as predicates on the members table, with
correlated counts over the portal's ``logins``, the sensor's visits of the member's registered devices (staff
visits excluded) and marketing's ``sales`` and ``redemptions``: ``visits`` = Wi-Fi logins + sensor visits, as the
campaign report counts them; ``last_visit_days`` = whole days since ``members.last_seen_at`` (never seen: infinitely
long ago); ``tag in a, b`` / ``tag not in a, b`` = whether a row of ``member_tags`` (marketing.store.tags) names the
member and one of the tags. Enrolling the members a segment selects is marketing.store.audience's (one writer of ``campaign_members``,
under its lock); :func:`member_in` checks one member (an event trigger).

The portal's tables are named as lightweight table clauses (marketing never imports the portal).
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analytics.store import visits as sensor_visits
from keliu import db
from marketing.core.campaign_spec import Condition
from marketing.store.audience import MEMBERS
from marketing.store.models import redemptions, sales
from marketing.store.tags import member_tags

#: the portal's logins and its link from a consenting member to the sensor's stable device id (table clauses)
LOGINS = sa.table("logins", sa.column("member_id", sa.Integer), sa.column("store_id", sa.String),
                  sa.column("ts", db.TS))
REGISTRY = sa.table("member_registry", sa.column("member_id", sa.Integer), sa.column("registry_id", sa.String))
_OPS: dict[str, Callable[[Any, Any], Any]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt,
                                              "<": operator.lt, "=": operator.eq, "!=": operator.ne}


def _count(table: Any, member_col: Any, *where: Any) -> sa.ScalarSelect[int]:
    return sa.select(sa.func.count()).select_from(table).where(member_col == MEMBERS.c.id, *where).scalar_subquery()


def _fact(fact: str) -> Any:
    v, reg = sensor_visits, REGISTRY
    if fact == "logins":
        return _count(LOGINS, LOGINS.c.member_id)
    if fact == "visits":
        sensed = sa.select(sa.func.count()).select_from(v.join(reg, reg.c.registry_id == v.c.device)).where(
            reg.c.member_id == MEMBERS.c.id, v.c.staff.is_(False)).scalar_subquery()
        return _count(LOGINS, LOGINS.c.member_id) + sensed
    if fact == "purchases":
        return _count(sales, sales.c.member_id, sales.c.kind == "sale")
    if fact == "redemptions":
        return _count(redemptions, redemptions.c.member_id, redemptions.c.kind == "redeem")
    raise ValueError(fact)


def _last_visit(c: Condition, now: datetime) -> sa.ColumnElement[bool]:
    """``last_visit_days <op> N`` with whole days: the member was last seen ``d`` days ago when
    ``now - (d+1) days < last_seen_at <= now - d days``; a member never seen is infinitely long ago."""
    seen = MEMBERS.c.last_seen_at
    n = int(c.value)

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)
    never = seen.is_(None)
    if c.op == ">=":
        return sa.or_(never, seen <= ago(n))
    if c.op == ">":
        return sa.or_(never, seen <= ago(n + 1))
    if c.op == "<=":
        return seen > ago(n + 1)
    if c.op == "<":
        return seen > ago(n)
    exact = sa.and_(seen > ago(n + 1), seen <= ago(n))
    return exact if c.op == "=" else sa.or_(never, sa.not_(exact))


def conditions(segment: Sequence[Condition], now: datetime) -> list[sa.ColumnElement[bool]]:
    """The segment as predicates on :data:`MEMBERS` (all must hold)."""
    out: list[sa.ColumnElement[bool]] = []
    for c in segment:
        if c.fact == "store":
            col = MEMBERS.c.first_store_id
            out.append(col == c.value if c.op == "=" else sa.or_(col.is_(None), col != c.value))
        elif c.fact == "tag":
            has = sa.exists().where(member_tags.c.member_id == MEMBERS.c.id,
                                    member_tags.c.tag.in_(str(c.value).split(",")))
            out.append(has if c.op == "in" else ~has)
        elif c.fact == "last_visit_days":
            out.append(_last_visit(c, now))
        else:
            out.append(_OPS[c.op](_fact(c.fact), int(c.value)))
    return out


def member_in(conn: Connection, segment: Sequence[Condition], member_id: int, now: datetime) -> bool:
    """Whether one member is in the segment now (an event trigger's check)."""
    if not segment:
        return True
    return conn.execute(sa.select(MEMBERS.c.id).where(MEMBERS.c.id == member_id, *conditions(segment, now))
                        ).first() is not None
