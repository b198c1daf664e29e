"""A segment in SQL, and enrolling it in a campaign (an edge: SQL).

:func:`conditions` renders :class:`marketing.core.campaign.Segment` as predicates on the members table, with
correlated counts over the portal's ``logins`` and marketing's ``sales`` and ``redemptions``; :func:`enroll`
inserts the matching members with their holdout arm in one ``INSERT … SELECT`` on PostgreSQL (the arm computed by
``marketing.store.audience.arm_sql``), in Python on SQLite — as the lapsed trigger does. Enrolled members keep
their first arm and eligibility.

The portal's tables are named as lightweight table clauses (marketing never imports the portal).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu import db
from marketing.core import holdout
from marketing.core.campaign import Segment
from marketing.store.audience import MEMBERS, arm_sql
from marketing.store.campaigns import campaign_members
from marketing.store.models import redemptions, sales

LOGINS = sa.table("logins", sa.column("member_id", sa.Integer), sa.column("ts", db.TS))


def _count(table: Any, member_col: Any, *where: Any) -> sa.ScalarSelect[int]:
    return sa.select(sa.func.count()).select_from(table).where(member_col == MEMBERS.c.id, *where).scalar_subquery()


def conditions(seg: Segment, now: datetime) -> list[sa.ColumnElement[bool]]:
    m = MEMBERS
    out: list[sa.ColumnElement[bool]] = []
    if seg.store_id is not None:
        out.append(m.c.first_store_id == seg.store_id)
    if seg.seen_within_days is not None:
        out.append(m.c.last_seen_at >= now - timedelta(days=seg.seen_within_days))
    if seg.not_seen_days is not None:
        out.append(m.c.last_seen_at < now - timedelta(days=seg.not_seen_days))
    if seg.min_logins:
        out.append(_count(LOGINS, LOGINS.c.member_id) >= seg.min_logins)
    if seg.min_purchases:
        out.append(_count(sales, sales.c.member_id, sales.c.kind == "sale") >= seg.min_purchases)
    if seg.min_redemptions:
        out.append(_count(redemptions, redemptions.c.member_id, redemptions.c.kind == "redeem")
                   >= seg.min_redemptions)
    return out


def enroll(conn: Connection, campaign_id: int, salt: str, control_share: float,
           where: list[sa.ColumnElement[bool]], now: datetime) -> None:
    """Enroll every member matching ``where`` (kept arms: ``ON CONFLICT DO NOTHING``)."""
    m, t = MEMBERS, campaign_members
    if conn.dialect.name == "postgresql":
        chosen = sa.select(sa.literal(campaign_id), m.c.id, arm_sql(m.c.id, salt, control_share),
                           sa.literal(now, db.TS)).where(*where)
        conn.execute(db.dialect_insert(conn, t).from_select(["campaign_id", "member_id", "arm", "eligible_at"], chosen)
                     .on_conflict_do_nothing())
        return
    ids = conn.execute(sa.select(m.c.id).where(*where)).scalars().all()
    rows = [{"campaign_id": campaign_id, "member_id": i, "eligible_at": now,
             "arm": holdout.assign(salt.encode(), i, control_share)} for i in ids]
    if rows:
        conn.execute(db.dialect_insert(conn, t).on_conflict_do_nothing(), rows)


def enroll_member(conn: Connection, campaign_id: int, salt: str, control_share: float, member_id: int,
                  now: datetime) -> str:
    """Enroll one member (an event trigger) and return their arm (the first one, if enrolled before)."""
    t = campaign_members
    conn.execute(db.dialect_insert(conn, t).values(
        campaign_id=campaign_id, member_id=member_id, eligible_at=now,
        arm=holdout.assign(salt.encode(), member_id, control_share)).on_conflict_do_nothing())
    return str(conn.execute(sa.select(t.c.arm).where(t.c.campaign_id == campaign_id, t.c.member_id == member_id))
               .scalar_one())
