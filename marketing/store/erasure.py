"""Erasing a member from marketing's tables (an edge: SQL), for the member-rights code (right to erasure).

Marketing holds member *ids*, never phone numbers. Erasure unlinks them: the member's coupons, ledger rows and
sales keep their amounts (the store's books and the budgets stay right) but no longer point at anyone, and the
per-member counters go. A coupon still ``issued`` is voided (no one can present it as theirs any more). Runs in the
caller's transaction, before the member row itself is deleted (the foreign keys need it first).
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketing.store.models import coupons, member_offers, redemptions, sales


def erase_member(conn: Connection, member_id: int, now: datetime | None = None) -> dict[str, int]:
    """Unlink ``member_id`` from every marketing table; returns the rows touched per table."""
    done: dict[str, int] = {}
    if now is not None:
        done["coupons_voided"] = conn.execute(sa.update(coupons).where(
            coupons.c.member_id == member_id, coupons.c.state == "issued").values(state="voided", state_at=now)).rowcount
    done["coupons"] = conn.execute(sa.update(coupons).where(coupons.c.member_id == member_id)
                                   .values(member_id=None)).rowcount
    done["redemptions"] = conn.execute(sa.update(redemptions).where(redemptions.c.member_id == member_id)
                                       .values(member_id=None)).rowcount
    done["sales"] = conn.execute(sa.update(sales).where(sales.c.member_id == member_id)
                                 .values(member_id=None, match=None)).rowcount
    done["member_offers"] = conn.execute(sa.delete(member_offers).where(member_offers.c.member_id == member_id)).rowcount
    return done
