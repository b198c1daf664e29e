"""The contact policy at send time (an edge: SQL). One claim per send decides, counts and records it atomically.

:func:`reserve` is what a sending task calls before it touches a channel. It picks one of two executors of the same
plan by the database:

- :func:`reserve_portable` (SQLite, and PostgreSQL for comparison), statement by statement in one transaction:

  1. it claims the send's row in ``campaign_sends`` (unique per campaign, step and member): a second claim — a
     retried task, a second worker, a doubled trigger — finds the row and stops with ``duplicate``;
  2. it reads the member's consents (through the injected reader, in the same transaction: a withdrawal committed a
     second earlier is seen), today's counts and the campaign's last send to the member, and asks the pure
     :func:`marketing.core.contact.decide`;
  3. for a push it may send, it raises the member's count for the day in all and for the channel, each by one
     conditional upsert (``… ON CONFLICT DO UPDATE SET n = n + 1 WHERE n < cap RETURNING n``): on PostgreSQL the
     second of two racing transactions waits for the first's row lock and re-checks the condition, so two workers
     sending to one member at the same moment can never both pass the cap; SQLite serializes writers;
  4. it records ``reserved``, ``control`` (the holdout's would-have-sent event: decided like a real send, never
     counted) or ``suppressed`` with the reason.

- :func:`reserve_pg` (PostgreSQL), one statement in the transaction instead of four to six: the consents are read
  first (the reader's own statements, in the same transaction), :func:`marketing.core.contact.decide` settles what
  needs no table (withdrawn, consent, quiet hours), and one statement — data-modifying CTEs built from the same Table
  objects — checks the cooldown and both caps against the member's rows, raises the two counts by the same
  conditional upserts (the daily count first, the channel's only if it rose), and inserts the send's row with the
  outcome, ``ON CONFLICT DO NOTHING`` (no row: ``duplicate``). The counts are raised before the row is claimed (the
  row's status is their outcome, and a statement cannot update a row it inserted), but only when no claim was
  visible when the statement began; what a race can leave raised for a send that does not go — a duplicate that
  started before the first claim committed, a channel cap met after the daily count rose — is given back by one more
  statement in the same transaction, before the row locks are released, so no other send ever sees it.
  ``tests/marketing/test_contact_store.py`` runs the races on both executors and compares their answers and rows.

The caller sends only after ``reserved`` was committed, then calls :func:`mark`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from keliu import db
from marketing.core import contact
from marketing.core.contact import ContactPolicy, Decision, MemberFacts, Send
from marketing.store.campaigns import campaign_sends, contact_counts

#: reads a member's granted purposes and refused channels on the given connection, inside the send's transaction
ConsentReader = Callable[[Connection, int], tuple[frozenset[str], frozenset[str]]]

ALL_CHANNELS = "*"
#: the reasons that depend on the member's counts: decided by the store, not before it
_COUNTED = ("daily_cap", "channel_cap")


@dataclass(frozen=True)
class Reservation:
    send_id: int | None
    decision: Decision
    status: str


def reserve(engine: Engine, policy: ContactPolicy, send: Send, now: datetime, consents_of: ConsentReader,
            step: int = 0, control: bool = False) -> Reservation:
    """Decide and record one send (see the module's docstring). ``control``: the member is in the holdout."""
    if engine.dialect.name == "postgresql":
        return reserve_pg(engine, policy, send, now, consents_of, step, control)
    return reserve_portable(engine, policy, send, now, consents_of, step, control)


# --- statement by statement -----------------------------------------------------------------------------------


def _bump(conn: Connection, member_id: int, day: str, channel: str, cap: int) -> bool:
    """Count one more push for (member, day, channel) unless the count already reached ``cap``."""
    if cap <= 0:
        return False
    t = contact_counts
    stmt = db.dialect_insert(conn, t).values(member_id=member_id, day=day, channel=channel, n=1)
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.member_id, t.c.day, t.c.channel],
                                      set_={"n": t.c.n + 1}, where=t.c.n < cap).returning(t.c.n)
    return conn.execute(stmt).first() is not None


def _unbump(conn: Connection, member_id: int, day: str, *channels: str) -> None:
    t = contact_counts
    conn.execute(sa.update(t).where(t.c.member_id == member_id, t.c.day == day, t.c.channel.in_(channels),
                                    t.c.n > 0).values(n=t.c.n - 1))


def give_back(conn: Connection, member_id: int, day: str, channel: str) -> None:
    """Give back the counts a ``reserved`` send raised (the day in all and its channel) when it is suppressed after
    all, before any channel was called (marketing.execution: the campaign's coupon could not be issued)."""
    if channel in contact.PUSH_CHANNELS:
        _unbump(conn, member_id, day, ALL_CHANNELS, channel)


def _facts(conn: Connection, send: Send, day: str, consents_of: ConsentReader) -> MemberFacts:
    granted, refused = consents_of(conn, send.member_id)
    t = contact_counts
    counts = {row.channel: row.n for row in conn.execute(
        sa.select(t.c.channel, t.c.n).where(t.c.member_id == send.member_id, t.c.day == day))}
    s = campaign_sends
    last = conn.execute(sa.select(sa.func.max(s.c.ts)).where(
        s.c.campaign_id == send.campaign_id, s.c.member_id == send.member_id,
        s.c.status.in_(("reserved", "sent")))).scalar()
    return MemberFacts(consents=granted, withdrawn_channels=refused, sent_today=counts.pop(ALL_CHANNELS, 0),
                       sent_today_by_channel=counts, last_sent_for_campaign=last)


def reserve_portable(engine: Engine, policy: ContactPolicy, send: Send, now: datetime, consents_of: ConsentReader,
                     step: int = 0, control: bool = False) -> Reservation:
    """:func:`reserve`, statement by statement in one transaction (SQLite and PostgreSQL)."""
    day = contact.local_day(now, send.store_timezone).isoformat()
    s = campaign_sends
    with engine.begin() as conn:
        claim = db.dialect_insert(conn, s).values(campaign_id=send.campaign_id, step=step, member_id=send.member_id,
                                                  channel=send.channel, status="pending", ts=now)
        send_id = conn.execute(claim.on_conflict_do_nothing(
            index_elements=[s.c.campaign_id, s.c.step, s.c.member_id]).returning(s.c.id)).scalar()
        if send_id is None:
            return Reservation(None, Decision(False, "duplicate"), "duplicate")
        decision = contact.decide(policy, send, _facts(conn, send, day, consents_of), now)
        counted = False
        if decision.send and not control and send.channel in contact.PUSH_CHANNELS:
            if not _bump(conn, send.member_id, day, ALL_CHANNELS, policy.daily_cap):
                decision = Decision(False, "daily_cap")
            elif not _bump(conn, send.member_id, day, send.channel, policy.channel_cap(send.channel)):
                decision, counted = Decision(False, "channel_cap"), True
        if not decision.send:
            conn.execute(sa.update(s).where(s.c.id == send_id).values(status="suppressed", reason=decision.reason))
            if counted:
                # give back the daily count raised above (only that one: a channel cap decide() saw raised
                # nothing): suppressed sends take no place under the caps
                _unbump(conn, send.member_id, day, ALL_CHANNELS)
            status = "suppressed"
        else:
            status = "control" if control else "reserved"
            conn.execute(sa.update(s).where(s.c.id == send_id).values(status=status))
    return Reservation(send_id, decision, status)


# --- PostgreSQL: one statement --------------------------------------------------------------------------------


def _p(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    """A parameter of the one statement, prefixed (a parameter named like a column would become a value of the
    INSERTs, as in portal.store.login_store)."""
    return sa.bindparam("p_" + name, type_=type_ if type_ is not None else sa.String())


def _pg_statement() -> sa.Select[Any]:
    """The one statement (built and compiled once: :func:`_compiled`); the send comes in as bound parameters:
    ``check`` (look at the member's rows: cooldown and caps), ``count`` (raise the counts if the check passes),
    ``pre_reason`` (what :func:`marketing.core.contact.decide` refused without the rows), ``ok`` (the status of a
    send that may go: ``reserved`` or ``control``)."""
    s, t = campaign_sends, contact_counts
    campaign, step, member = _p("campaign", sa.Integer()), _p("step", sa.Integer()), _p("member", sa.Integer())
    channel, day, now = _p("channel"), _p("day"), _p("now", db.TS)
    check, count = _p("check", sa.Boolean()), _p("count", sa.Boolean())
    daily_cap, channel_cap = _p("daily_cap", sa.Integer()), _p("channel_cap", sa.Integer())

    def n_today(of: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.select(t.c.n).where(t.c.member_id == member, t.c.day == day, t.c.channel == of)
                                .scalar_subquery(), 0)

    last = sa.select(sa.func.max(s.c.ts)).where(s.c.campaign_id == campaign, s.c.member_id == member,
                                                s.c.status.in_(("reserved", "sent"))).scalar_subquery()
    # the checks of contact.decide that need the rows, in its order (``tests/marketing`` compares the executors)
    reason = sa.case(
        (~check, _p("pre_reason")),
        (sa.and_(_p("cooldown", sa.Boolean()), last > _p("cooldown_from", db.TS)), "cooldown"),
        (n_today(sa.literal(ALL_CHANNELS)) >= daily_cap, "daily_cap"),
        (n_today(channel) >= channel_cap, "channel_cap"),
        else_=sa.null())
    claimed = sa.exists().where(s.c.campaign_id == campaign, s.c.step == step, s.c.member_id == member)
    verdict = sa.select(reason.label("reason"), claimed.label("claimed")).cte("verdict")

    def bump(name: str, source: sa.FromClause, which: sa.ColumnElement[str], cap: sa.ColumnElement[int],
             *when: sa.ColumnElement[bool]) -> sa.CTE:
        up = pg_insert(t).from_select(["member_id", "day", "channel", "n"], sa.select(
            member, day, which, sa.literal(1)).select_from(source).where(count, *when))
        return (up.on_conflict_do_update(index_elements=[t.c.member_id, t.c.day, t.c.channel],
                                         set_={"n": t.c.n + 1}, where=t.c.n < cap)
                .returning(t.c.n).cte(name))

    bump_all = bump("bump_all", verdict, sa.literal(ALL_CHANNELS), daily_cap, verdict.c.reason.is_(None), ~verdict.c.claimed)
    bump_channel = bump("bump_channel", bump_all, channel, channel_cap)
    rose_all, rose_channel = sa.select(bump_all.c.n).exists(), sa.select(bump_channel.c.n).exists()
    status = sa.case((verdict.c.reason.is_not(None), "suppressed"), (~count, _p("ok")),
                     (~rose_channel, "suppressed"), else_="reserved")
    why = sa.case((verdict.c.reason.is_not(None), verdict.c.reason), (~count, sa.null()),
                  (~rose_all, "daily_cap"), (~rose_channel, "channel_cap"), else_=sa.null())
    claim = (pg_insert(s).from_select(
        ["campaign_id", "step", "member_id", "channel", "status", "reason", "ts"],
        # the other columns take their server defaults (``attempts`` 0): a Python-side default would become a bind
        # parameter of this statement, compiled once, and arrive as NULL
        sa.select(campaign, step, member, channel, status, why, now).select_from(verdict), include_defaults=False)
        .on_conflict_do_nothing(index_elements=[s.c.campaign_id, s.c.step, s.c.member_id])
        .returning(s.c.id, s.c.status, s.c.reason).cte("claim"))
    return sa.select(sa.select(claim.c.id).scalar_subquery().label("id"),
                     sa.select(claim.c.status).scalar_subquery().label("status"),
                     sa.select(claim.c.reason).scalar_subquery().label("reason"),
                     rose_all.label("rose_all"), rose_channel.label("rose_channel"))


#: the one statement compiled per dialect: SQLAlchemy 2.0 does not cache a statement holding PostgreSQL's ``INSERT
#: … ON CONFLICT`` and would compile it on every send (portal.store.login_store measured the same)
_COMPILED: dict[sa.Dialect, sa.Compiled] = {}


def _compiled(conn: Connection) -> sa.Compiled:
    compiled = _COMPILED.get(conn.dialect)
    if compiled is None:
        compiled = _COMPILED[conn.dialect] = _pg_statement().compile(dialect=conn.dialect)
    return compiled


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection on which each statement is its own transaction: one round trip, no BEGIN and COMMIT."""
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


def reserve_pg(engine: Engine, policy: ContactPolicy, send: Send, now: datetime, consents_of: ConsentReader,
               step: int = 0, control: bool = False) -> Reservation:
    """:func:`reserve` in one PostgreSQL statement (see the module's docstring)."""
    day = contact.local_day(now, send.store_timezone).isoformat()
    with engine.begin() as conn:
        granted, refused = consents_of(conn, send.member_id)
        # what decide() says before the member's rows: a refusal that no count can change is final
        pre = contact.decide(policy, send, MemberFacts(consents=granted, withdrawn_channels=refused), now)
        push = send.channel in contact.PUSH_CHANNELS
        check = push and (pre.send or pre.reason in _COUNTED)
        row = conn.execute(_compiled(conn), {  # type: ignore[call-overload]
            "p_campaign": send.campaign_id, "p_step": step, "p_member": send.member_id, "p_channel": send.channel,
            "p_day": day, "p_now": now, "p_check": check, "p_count": check and not control,
            "p_pre_reason": None if check else pre.reason, "p_ok": "control" if control else "reserved",
            "p_daily_cap": policy.daily_cap, "p_channel_cap": policy.channel_cap(send.channel),
            "p_cooldown": send.cooldown.total_seconds() > 0, "p_cooldown_from": now - send.cooldown}).one()
        # a race left a count raised for a send that does not go: give it back before the row locks are released
        give_back = []
        if row.rose_all and (row.id is None or row.reason == "channel_cap"):
            give_back.append(ALL_CHANNELS)
        if row.rose_channel and row.id is None:
            give_back.append(send.channel)
        if give_back:
            _unbump(conn, send.member_id, day, *give_back)
    if row.id is None:
        return Reservation(None, Decision(False, "duplicate"), "duplicate")
    if row.status != "suppressed":
        return Reservation(int(row.id), contact.SEND, str(row.status))
    return Reservation(int(row.id), pre if not check else Decision(False, str(row.reason)), "suppressed")


def mark(engine: Engine, send_id: int, status: str) -> None:
    """After the channel answered: ``sent`` or ``failed`` (a failed push keeps its place under the caps)."""
    if status not in ("sent", "failed"):
        raise ValueError(f"status: expected 'sent' or 'failed', got {status!r}")
    s = campaign_sends
    with _autocommit(engine) as conn:  # one statement: its own transaction
        conn.execute(sa.update(s).where(s.c.id == send_id, s.c.status == "reserved").values(status=status))
