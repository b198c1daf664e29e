"""Erasing a member from marketing's tables (an edge: SQL), for the member-rights code (right to erasure).

Marketing holds member *ids*, never phone numbers. Erasure unlinks them: the member's coupons, ledger rows and
sales keep their amounts (the store's books and the budgets stay right) but no longer point at anyone, and the
per-member counters and the member's tags go; the member's campaign enrollments are deleted (under the enrollment lock, exclusive: the
table has no foreign key, see marketing.store.campaigns). A coupon still ``issued`` is voided (no one can present it as theirs any more). Runs in the
caller's transaction, before the member row itself is deleted (the foreign keys need it first).
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketing import staff
from marketing.store import tags
from marketing.store.audience import enrollment_lock
from marketing.store.campaigns import (
    campaign_members,
    campaign_sends,
    campaigns,
    sms_replies,
    splash_messages,
)
from marketing.store.models import coupons, member_offers, offers, redemptions, sales


def erase_member(conn: Connection, member_id: int, now: datetime | None = None) -> dict[str, int]:
    """Unlink ``member_id`` from every marketing table; returns the rows touched per table."""
    done: dict[str, int] = {}
    enrollment_lock(conn, exclusive=True)
    done["campaign_members"] = conn.execute(sa.delete(campaign_members).where(
        campaign_members.c.member_id == member_id)).rowcount
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
    done["member_tags"] = tags.erase_member(conn, member_id)
    done.update(staff.erase_member(conn, member_id))
    return done


def export_member(conn: Connection, member_id: int) -> dict[str, list[dict[str, object]]]:
    """What marketing holds of a member, for the right of access: coupons, purchases, staff attributions, the
    campaigns that enrolled them (with the arm: the member may see they were held out), every send decided for
    them (sent, suppressed and why), the success-page messages, their tags and their SMS replies (refusals)."""
    def rows(stmt: sa.Select[tuple[object, ...]]) -> list[dict[str, object]]:
        return [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in r._mapping.items()}
                for r in conn.execute(stmt)]

    return {
        "coupons": rows(sa.select(coupons.c.code, offers.c.title, coupons.c.state, coupons.c.issued_at,
                                  coupons.c.state_at).join(offers, offers.c.id == coupons.c.offer_id)
                        .where(coupons.c.member_id == member_id).order_by(coupons.c.issued_at)),
        "purchases": rows(sa.select(sales.c.store_id, sales.c.kind, sales.c.ts, sales.c.amount_cents, sales.c.match)
                          .where(sales.c.member_id == member_id).order_by(sales.c.ts)),
        "staff_attributions": rows(sa.select(staff.staff_bindings.c.store_id, staff.staff_bindings.c.staff,
                                             staff.staff_bindings.c.bound_at, staff.staff_bindings.c.expires_at)
                                   .where(staff.staff_bindings.c.member_id == member_id)
                                   .order_by(staff.staff_bindings.c.bound_at)),
        "campaigns": rows(sa.select(campaigns.c.name, campaign_members.c.arm, campaign_members.c.eligible_at)
                          .join(campaigns, campaigns.c.id == campaign_members.c.campaign_id)
                          .where(campaign_members.c.member_id == member_id).order_by(campaign_members.c.eligible_at)),
        "campaign_sends": rows(sa.select(campaigns.c.name, campaign_sends.c.channel, campaign_sends.c.status,
                                         campaign_sends.c.reason, campaign_sends.c.ts)
                               .join(campaigns, campaigns.c.id == campaign_sends.c.campaign_id)
                               .where(campaign_sends.c.member_id == member_id).order_by(campaign_sends.c.ts)),
        "success_page_messages": rows(sa.select(splash_messages.c.text, splash_messages.c.created_at,
                                                splash_messages.c.shown_at)
                                      .where(splash_messages.c.member_id == member_id)
                                      .order_by(splash_messages.c.created_at)),
        "tags": rows(sa.select(tags.member_tags.c.tag, tags.member_tags.c.created_at)
                     .where(tags.member_tags.c.member_id == member_id).order_by(tags.member_tags.c.tag)),
        "sms_replies": rows(sa.select(sms_replies.c.received_at, sms_replies.c.refusal)
                            .where(sms_replies.c.member_id == member_id).order_by(sms_replies.c.received_at)),
    }
