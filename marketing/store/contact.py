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

:func:`reserve_many` decides a batch of sends in one transaction of a fixed number of statements (a campaign run's
claims; :func:`reserve_many_pg` says how the caps hold), with the same answers and rows as the sends one by one.

The caller sends only after ``reserved`` was committed, then calls :func:`mark`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from keliu import db
from marketing.core import contact
from marketing.core.contact import ContactPolicy, Decision, MemberFacts, Send
from marketing.errors import MarketingError
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


# --- a batch: many sends, one transaction ---------------------------------------------------------------------

#: reads the granted purposes and refused channels of many members at once, inside the batch's transaction; a member
#: it does not answer for has consented to nothing
ConsentsReader = Callable[[Connection, Sequence[int]], Mapping[int, tuple[frozenset[str], frozenset[str]]]]


@dataclass(frozen=True)
class Planned:
    """One send of a batch: the message, its step, and whether the member is in the holdout."""

    send: Send
    step: int = 0
    control: bool = False


def reserve_many(engine: Engine, policy: ContactPolicy, planned: Sequence[Planned], now: datetime,
                 consents_of: ConsentsReader) -> list[Reservation]:
    """Decide and record many sends (see :func:`reserve_many_pg`); the answers in ``planned``'s order, each what
    :func:`reserve` would have answered for the sends one after the other. On SQLite: one
    :func:`reserve_portable` per send."""
    if not planned:
        return []
    if engine.dialect.name == "postgresql":
        return reserve_many_pg(engine, policy, planned, now, consents_of)

    def one(conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
        return consents_of(conn, [member_id]).get(member_id, (frozenset(), frozenset()))

    return [reserve_portable(engine, policy, p.send, now, one, p.step, p.control) for p in planned]


Key = tuple[int, str, str]  # (member, day, channel) of contact_counts

# The batch's statements take their rows as arrays (``unnest … WITH ORDINALITY``, in the arrays' order): one text
# whatever the batch's size, so neither SQLAlchemy (a multi-row VALUES is compiled anew for every batch: most of a
# batch's time, measured) nor PostgreSQL (a prepared statement per text) compiles it again.
_SNAPSHOT = sa.text(
    "SELECT member_id, day, channel, n FROM contact_counts"
    " WHERE member_id = ANY(CAST(:members AS integer[])) AND day = ANY(CAST(:days AS varchar[]))")
_LAST_SENT = sa.text(
    "SELECT campaign_id, member_id, max(ts) FROM campaign_sends"
    " WHERE campaign_id = ANY(CAST(:campaigns AS integer[])) AND member_id = ANY(CAST(:members AS integer[]))"
    " AND status IN ('reserved', 'sent') GROUP BY campaign_id, member_id")
#: creates a missing count at 0 and locks every one, in the arrays' order; returns the counts under their locks
_LOCK = sa.text(
    "INSERT INTO contact_counts (member_id, day, channel, n)"
    " SELECT k.m, k.d, k.c, 0 FROM unnest(CAST(:m AS integer[]), CAST(:d AS varchar[]), CAST(:c AS varchar[]))"
    " WITH ORDINALITY AS k(m, d, c, o) ORDER BY k.o"
    " ON CONFLICT (member_id, day, channel) DO UPDATE SET n = contact_counts.n"
    " RETURNING member_id, day, channel, n")
_CLAIMED = sa.text(
    "SELECT campaign_id, step, member_id FROM campaign_sends WHERE (campaign_id, step, member_id) IN"
    " (SELECT * FROM unnest(CAST(:c AS integer[]), CAST(:s AS integer[]), CAST(:m AS integer[])))")
#: raises the counts (locked by _LOCK) and inserts the sends' rows with their outcomes, in key order
_RECORD = sa.text(
    "WITH raised AS (UPDATE contact_counts SET n = v.n FROM unnest(CAST(:cm AS integer[]), CAST(:cd AS varchar[]),"
    " CAST(:cc AS varchar[]), CAST(:cn AS integer[])) AS v(m, d, c, n)"
    " WHERE contact_counts.member_id = v.m AND contact_counts.day = v.d AND contact_counts.channel = v.c)"
    " INSERT INTO campaign_sends (campaign_id, step, member_id, channel, status, reason, ts)"
    " SELECT k.c, k.s, k.m, k.ch, k.st, k.r, :now FROM unnest(CAST(:c AS integer[]), CAST(:s AS integer[]),"
    " CAST(:m AS integer[]), CAST(:ch AS varchar[]), CAST(:st AS varchar[]), CAST(:r AS varchar[]))"
    " WITH ORDINALITY AS k(c, s, m, ch, st, r, o) ORDER BY k.o"
    " ON CONFLICT (campaign_id, step, member_id) DO NOTHING RETURNING id, campaign_id, step, member_id"
).bindparams(sa.bindparam("now", type_=db.TS))
#: how often a batch starts again after a claim it saw free was taken by a transaction running beside it
_RACES = 10


class _Raced(MarketingError):
    """A send of the batch was claimed by another transaction after the batch's snapshot: start again."""


def reserve_many_pg(engine: Engine, policy: ContactPolicy, planned: Sequence[Planned], now: datetime,
                    consents_of: ConsentsReader) -> list[Reservation]:
    """A batch of sends in one transaction on PostgreSQL, a fixed number of statements whatever its size:

    1. the members' consents (the reader's statement) and what :func:`marketing.core.contact.decide` settles
       without a table (withdrawn, consent, quiet hours): those sends take no lock;
    2. a snapshot, without locks: the members' counts of the day, the sends already claimed, and (when a send has a
       cooldown) the campaigns' last sends to the members;
    3. **the counts the batch may raise are locked**, in one order (member, day, channel; the one-send statement
       takes its two in the same order, ``*`` first, so no two writers deadlock): one ``INSERT … ON CONFLICT DO
       UPDATE SET n = n … RETURNING n`` that creates a missing row at 0 and returns the current count under the
       lock. A count already at its cap in the snapshot is not locked: counts only rise while their day lasts (no
       transaction commits a count it gives back), so it is still at its cap, and the sends that need it are
       suppressed without waiting for anyone;
    4. each send is decided by :func:`marketing.core.contact.decide` in the batch's order against the counts as
       the batch raised them (two sends to one member in one batch meet the caps one after the other); a send
       already claimed, or twice in the batch (after its first), is a ``duplicate``;
    5. one statement raises the counts and inserts the sends' rows with their outcomes, in key order, ``ON
       CONFLICT DO NOTHING``. A row that was free in the snapshot but taken since (a transaction beside this one
       claimed it and committed; the insert waited for it) is not returned: the counts may have been raised for a
       duplicate, so the transaction is rolled back and the batch starts again from 1, where the snapshot shows
       the claim.

    The caps hold under any concurrency: every count a send raises was read under its row lock, held to the commit.
    A suppressed send is recorded with its reason like one decided alone. A count locked for a send that did not
    go stays (at 0 when the batch created it)."""
    for _ in range(_RACES):
        try:
            return _reserve_batch(engine, policy, planned, now, consents_of)
        except _Raced:
            continue
    raise RuntimeError(f"reserve_many: {_RACES} batches in a row lost a claim to a concurrent transaction")


def _reserve_batch(engine: Engine, policy: ContactPolicy, planned: Sequence[Planned], now: datetime,
                   consents_of: ConsentsReader) -> list[Reservation]:
    days = [contact.local_day(now, p.send.store_timezone).isoformat() for p in planned]
    caps = {ch: policy.channel_cap(ch) for ch in contact.PUSH_CHANNELS}

    def cap_of(key: Key) -> int:
        return policy.daily_cap if key[2] == ALL_CHANNELS else caps[key[2]]

    # the first of each (campaign, step, member) in the batch; the others are duplicates
    first: dict[tuple[int, int, int], int] = {}
    for i, p in enumerate(planned):
        first.setdefault((p.send.campaign_id, p.step, p.send.member_id), i)
    keys = sorted(first)
    with engine.begin() as conn:
        consents = consents_of(conn, sorted({p.send.member_id for p in planned}))
        claimed = {(int(c), int(st), int(m)) for c, st, m in conn.execute(_CLAIMED, {
            "c": [k[0] for k in keys], "s": [k[1] for k in keys], "m": [k[2] for k in keys]})}
        new = [i for i, p in enumerate(planned)
               if first[(key3 := (p.send.campaign_id, p.step, p.send.member_id))] == i and key3 not in claimed]
        granted = {i: consents.get(planned[i].send.member_id, (frozenset(), frozenset())) for i in new}
        pre = {i: contact.decide(policy, planned[i].send, MemberFacts(consents=granted[i][0],
                                                                      withdrawn_channels=granted[i][1]), now)
               for i in new}
        checked = [i for i in new if planned[i].send.channel in contact.PUSH_CHANNELS
                   and (pre[i].send or pre[i].reason in _COUNTED)]
        # today's counts by (member, day), then by channel ("*": all channels)
        counts: dict[tuple[int, str], dict[str, int]] = {}
        last: dict[tuple[int, int], datetime] = {}
        if checked:
            for m, d, ch, n in conn.execute(_SNAPSHOT, {
                    "members": sorted({planned[i].send.member_id for i in checked}),
                    "days": sorted({days[i] for i in checked})}):
                counts.setdefault((int(m), str(d)), {})[str(ch)] = int(n)
            cooled = [i for i in checked if planned[i].send.cooldown > timedelta(0)]
            if cooled:
                for c, m, ts in conn.execute(_LAST_SENT, {
                        "campaigns": sorted({planned[i].send.campaign_id for i in cooled}),
                        "members": sorted({planned[i].send.member_id for i in cooled})}):
                    last[(int(c), int(m))] = ts
            lock = sorted({key for i in checked if not planned[i].control
                           for key in ((planned[i].send.member_id, days[i], ALL_CHANNELS),
                                       (planned[i].send.member_id, days[i], planned[i].send.channel))
                           if 0 < cap_of(key) and counts.get(key[:2], {}).get(key[2], 0) < cap_of(key)})
            if lock:
                for m, d, ch, n in conn.execute(_LOCK, {"m": [k[0] for k in lock], "d": [k[1] for k in lock],
                                                        "c": [k[2] for k in lock]}):
                    counts.setdefault((int(m), str(d)), {})[str(ch)] = int(n)
        decisions: dict[int, Decision] = {}
        raised: set[Key] = set()
        for i in new:
            p, decision = planned[i], pre[i]
            if i in checked:
                m, day, ch = p.send.member_id, days[i], p.send.channel
                today = counts.setdefault((m, day), {})
                decision = contact.decide(policy, p.send, MemberFacts(
                    consents=granted[i][0], withdrawn_channels=granted[i][1], sent_today=today.get(ALL_CHANNELS, 0),
                    sent_today_by_channel={c: n for c, n in today.items() if c != ALL_CHANNELS},
                    last_sent_for_campaign=last.get((p.send.campaign_id, m))), now)
                if decision.send and not p.control:
                    for c in (ALL_CHANNELS, ch):
                        today[c] = today.get(c, 0) + 1
                        raised.add((m, day, c))
                    last[(p.send.campaign_id, m)] = now
            decisions[i] = decision
        status = {i: ("control" if planned[i].control else "reserved") if d.send else "suppressed"
                  for i, d in decisions.items()}
        ids: dict[tuple[int, int, int], int] = {}
        if new:
            rows = sorted(new, key=lambda i: (planned[i].send.campaign_id, planned[i].step, planned[i].send.member_id))
            up = sorted(raised)
            ids = {(int(c), int(st), int(m)): int(sid) for sid, c, st, m in conn.execute(_RECORD, {
                "cm": [k[0] for k in up], "cd": [k[1] for k in up], "cc": [k[2] for k in up],
                "cn": [counts[k[:2]][k[2]] for k in up],
                "c": [planned[i].send.campaign_id for i in rows], "s": [planned[i].step for i in rows],
                "m": [planned[i].send.member_id for i in rows], "ch": [planned[i].send.channel for i in rows],
                "st": [status[i] for i in rows], "r": [decisions[i].reason for i in rows], "now": now})}
            if len(ids) != len(new):
                raise _Raced  # rolled back by the context manager: nothing of this attempt stays
    out: list[Reservation] = []
    for i, p in enumerate(planned):
        if i not in decisions:
            out.append(Reservation(None, Decision(False, "duplicate"), "duplicate"))
        else:
            out.append(Reservation(ids[(p.send.campaign_id, p.step, p.send.member_id)], decisions[i], status[i]))
    return out
