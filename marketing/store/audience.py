"""Who a campaign reaches, and in which arm (an edge: SQL).

A trigger's segment is evaluated in the database, in one statement: the eligible members are inserted into
``campaign_members`` with their arm, computed by the same keyed hash as :func:`marketing.core.holdout.assign`
(PostgreSQL: the built-in ``hashint4extended(id, seed)``, one call per member, compared with the threshold as a
bigint). A member already enrolled keeps their first arm and first eligibility: re-running a trigger changes
nothing. On PostgreSQL the campaign's row is locked first (``FOR NO KEY UPDATE``, a statement of its own, so that the
insert's snapshot is taken after the lock), with :func:`enrollment_lock` held shared (the table has no foreign keys:
marketing.store.campaigns says why and who keeps its references true): two runs of one campaign's trigger take turns, and the insert skips the
members already enrolled by an anti-join, set-based, instead of trying every row against the unique index (``ON
CONFLICT DO NOTHING`` cost a fifth of the statement over a million members). A writer of the campaign's members
that did not take the lock would meet the unique key and fail the run, loudly; a re-run completes it.

Consent is not part of eligibility: it is checked at send time by the contact policy, for both arms alike, so the
holdout compares like with like (intent to treat).

The members' table belongs to the portal, which marketing must not import: it is named here as a lightweight table
clause with the three columns used (a schema contract; tests/marketing checks it against the real schema).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu import db
from marketing.core import holdout
from marketing.errors import FieldInvalid
from marketing.store.campaigns import campaign_members, campaigns

MEMBERS = sa.table("members", sa.column("id", sa.Integer), sa.column("first_store_id", sa.String),
                   sa.column("last_seen_at", db.TS))


#: the advisory lock between enrolling (shared) and erasing a member (exclusive), see marketing.store.campaigns
ENROLLMENT_LOCK = 0x6B656C69_75636D01  # "keliu" cm 1


def enrollment_lock(conn: Connection, exclusive: bool = False) -> None:
    """Hold the enrollment lock until the transaction ends (PostgreSQL; SQLite serializes writers). Take it in a
    statement of its own, before the statements it protects: they must read after it was granted."""
    if conn.dialect.name == "postgresql":
        lock = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        conn.execute(sa.select(lock(sa.literal(ENROLLMENT_LOCK, sa.BigInteger))))


def arm_sql(member_id: sa.ColumnElement[int], salt: str, control_share: float) -> sa.ColumnElement[str]:
    """The holdout's arm as a PostgreSQL expression (equal to ``holdout.assign(salt.encode(), id, share)``)."""
    seed = sa.literal(holdout.seed(salt.encode()), sa.BigInteger)
    h = sa.func.hashint4extended(member_id, seed, type_=sa.BigInteger)
    return sa.case((h < sa.literal(holdout.signed_threshold(control_share), sa.BigInteger), "control"),
                   else_="treatment")


def enroll(conn: Connection, campaign_id: int, salt: str, control_share: float,
           where: Sequence[sa.ColumnElement[bool]], now: datetime) -> None:
    """Enroll every member matching ``where`` (predicates on :data:`MEMBERS`) with their arm, in the caller's
    transaction: the enrollment lock (shared) and the campaign's row first, then one ``INSERT … SELECT`` that skips
    the members already enrolled (PostgreSQL), or the arms computed in Python (SQLite). Raises FieldInvalid for an
    unknown campaign. Every writer of ``campaign_members`` goes through here (the table has no foreign keys)."""
    m, t = MEMBERS, campaign_members
    enrollment_lock(conn)
    found = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)
                         .with_for_update(key_share=True)).first()
    if found is None:
        raise FieldInvalid("campaign_id", f"no campaign {campaign_id}")
    if conn.dialect.name == "postgresql":
        enrolled = sa.select(t.c.member_id).where(t.c.campaign_id == campaign_id, t.c.member_id == m.c.id)
        chosen = sa.select(sa.literal(campaign_id), m.c.id, arm_sql(m.c.id, salt, control_share),
                           sa.literal(now, db.TS)).where(*where, ~enrolled.exists())
        conn.execute(db.dialect_insert(conn, t).from_select(["campaign_id", "member_id", "arm", "eligible_at"],
                                                            chosen))
        return
    ids = conn.execute(sa.select(m.c.id).where(*where)).scalars().all()
    rows = [{"campaign_id": campaign_id, "member_id": i, "eligible_at": now,
             "arm": holdout.assign(salt.encode(), i, control_share)} for i in ids]
    if rows:
        conn.execute(db.dialect_insert(conn, t).on_conflict_do_nothing(), rows)


def enroll_member(conn: Connection, campaign_id: int, salt: str, control_share: float, member_id: int,
                  now: datetime) -> str | None:
    """Enroll one member (an event trigger) and return their arm (the first one, if enrolled before); None when
    there is no such member (erased)."""
    t = campaign_members
    enroll(conn, campaign_id, salt, control_share, [MEMBERS.c.id == member_id], now)
    arm = conn.execute(sa.select(t.c.arm).where(t.c.campaign_id == campaign_id, t.c.member_id == member_id)).scalar()
    return None if arm is None else str(arm)


def arms_of(conn: Connection, campaign_id: int, member_ids: Sequence[int]) -> dict[int, str]:
    """The arms of those of ``member_ids`` already enrolled in the campaign (one statement)."""
    t = campaign_members
    return {int(m): str(arm) for m, arm in conn.execute(sa.select(t.c.member_id, t.c.arm).where(
        t.c.campaign_id == campaign_id, t.c.member_id.in_(list(member_ids))))}


def enroll_lapsed(engine: Engine, campaign_id: int, salt: str, control_share: float, cutoff: datetime,
                  now: datetime, store_id: str | None = None) -> dict[str, int]:
    """Enroll the members not seen since ``cutoff`` (optionally: first seen in ``store_id``). Returns the arms'
    sizes of this campaign after the call."""
    m = MEMBERS
    where = [m.c.last_seen_at < cutoff]
    if store_id is not None:
        where.append(m.c.first_store_id == store_id)
    t = campaign_members
    with engine.begin() as conn:
        enroll(conn, campaign_id, salt, control_share, where, now)
        counts: dict[str, int] = {str(arm): int(n) for arm, n in conn.execute(
            sa.select(t.c.arm, sa.func.count()).where(t.c.campaign_id == campaign_id).group_by(t.c.arm))}
    return {"treatment": int(counts.get("treatment", 0)), "control": int(counts.get("control", 0))}
