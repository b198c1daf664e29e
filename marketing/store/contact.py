"""The contact policy at send time (an edge: SQL). One transaction per send decides, counts and records it.

:func:`reserve` is what a sending task calls before it touches a channel:

1. it claims the send's row in ``campaign_sends`` (unique per campaign, step and member): a second claim — a retried
   task, a second worker, a doubled trigger — finds the row and stops with ``duplicate``;
2. it reads the member's consents (through the injected reader, in the same transaction: a withdrawal committed a
   second earlier is seen), today's counts and the campaign's last send to the member, and asks the pure
   :func:`marketing.core.contact.decide`;
3. for a push it may send, it raises the member's count for the day in all and for the channel, each by one
   conditional upsert (``… ON CONFLICT DO UPDATE SET n = n + 1 WHERE n < cap RETURNING n``): on PostgreSQL the
   second of two racing transactions waits for the first's row lock and re-checks the condition, so two workers
   sending to one member at the same moment can never both pass the cap; SQLite serializes writers;
4. it records ``reserved``, ``control`` (the holdout's would-have-sent event: decided like a real send, never
   counted) or ``suppressed`` with the reason.

The caller sends only after ``reserved`` was committed, then calls :func:`mark`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu import db
from marketing.core import contact
from marketing.core.contact import ContactPolicy, Decision, MemberFacts, Send
from marketing.store.campaigns import campaign_sends, contact_counts

#: reads a member's granted purposes and refused channels inside the caller's transaction
ConsentReader = Callable[[Connection, int], tuple[frozenset[str], frozenset[str]]]

ALL_CHANNELS = "*"


@dataclass(frozen=True)
class Reservation:
    send_id: int | None
    decision: Decision
    status: str


def _bump(conn: Connection, member_id: int, day: str, channel: str, cap: int) -> bool:
    """Count one more push for (member, day, channel) unless the count already reached ``cap``."""
    if cap <= 0:
        return False
    t = contact_counts
    stmt = db.dialect_insert(conn, t).values(member_id=member_id, day=day, channel=channel, n=1)
    stmt = stmt.on_conflict_do_update(index_elements=[t.c.member_id, t.c.day, t.c.channel],
                                      set_={"n": t.c.n + 1}, where=t.c.n < cap).returning(t.c.n)
    return conn.execute(stmt).first() is not None


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


def reserve(engine: Engine, policy: ContactPolicy, send: Send, now: datetime, consents_of: ConsentReader,
            step: int = 0, control: bool = False) -> Reservation:
    """Decide and record one send (see the module's docstring). ``control``: the member is in the holdout."""
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
        if decision.send and not control and send.channel in contact.PUSH_CHANNELS:
            if not _bump(conn, send.member_id, day, ALL_CHANNELS, policy.daily_cap):
                decision = Decision(False, "daily_cap")
            elif not _bump(conn, send.member_id, day, send.channel, policy.channel_cap(send.channel)):
                decision = Decision(False, "channel_cap")
        if not decision.send:
            # undo the counts raised above: suppressed sends take no place under the caps
            conn.execute(sa.update(s).where(s.c.id == send_id).values(status="suppressed", reason=decision.reason))
            if decision.reason == "channel_cap":
                _unbump(conn, send.member_id, day, ALL_CHANNELS)
            status = "suppressed"
        else:
            status = "control" if control else "reserved"
            conn.execute(sa.update(s).where(s.c.id == send_id).values(status=status))
    return Reservation(send_id, decision, status)


def _unbump(conn: Connection, member_id: int, day: str, channel: str) -> None:
    t = contact_counts
    conn.execute(sa.update(t).where(t.c.member_id == member_id, t.c.day == day, t.c.channel == channel,
                                    t.c.n > 0).values(n=t.c.n - 1))


def mark(engine: Engine, send_id: int, status: str) -> None:
    """After the channel answered: ``sent`` or ``failed`` (a failed push keeps its place under the caps)."""
    if status not in ("sent", "failed"):
        raise ValueError(f"status: expected 'sent' or 'failed', got {status!r}")
    s = campaign_sends
    with engine.begin() as conn:
        conn.execute(sa.update(s).where(s.c.id == send_id, s.c.status == "reserved").values(status=status))
