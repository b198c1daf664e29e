"""The Wi-Fi success page's queued messages (an edge: SQL). A campaign's splash send stores its message in the
send's own transaction (exactly once: one row per send); the portal shows the member's pending messages at their
next success page (:func:`pending`) and marks them shown (:func:`mark_shown`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu import db
from marketing.store.campaigns import splash_messages


def queue(conn: Connection, *, send_id: int, member_id: int, campaign_id: int, store_id: str | None, text: str,
          now: datetime) -> None:
    t = splash_messages
    conn.execute(db.dialect_insert(conn, t).values(send_id=send_id, member_id=member_id, campaign_id=campaign_id,
                                                   store_id=store_id, text=text, created_at=now)
                 .on_conflict_do_nothing(index_elements=[t.c.send_id]))


def pending(conn: Connection, member_id: int, limit: int = 3) -> list[dict[str, Any]]:
    """The member's messages not shown yet, oldest first: ``{"id", "campaign_id", "text"}``."""
    t = splash_messages
    rows = conn.execute(sa.select(t.c.id, t.c.campaign_id, t.c.text).where(
        t.c.member_id == member_id, t.c.shown_at.is_(None)).order_by(t.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def mark_shown(conn: Connection, ids: list[int], now: datetime) -> int:
    t = splash_messages
    if not ids:
        return 0
    return conn.execute(sa.update(t).where(t.c.id.in_(ids), t.c.shown_at.is_(None)).values(shown_at=now)).rowcount
