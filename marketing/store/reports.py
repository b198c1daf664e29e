"""The rows the marketing metrics need, read from the ledger, coupons and sales (an edge: SQL); the dashboard's
marketing section (:mod:`marketing.report`) calls these and hands the rows to :mod:`marketing.core.metrics`.

Ranges are half-open instants ``[start, end)`` (the caller turns local days into instants in the store's zone).
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketing.core.metrics import Booked, SaleFact
from marketing.store.models import coupons, offers, redemptions, sales


def issued_per_offer(conn: Connection, store_ids: list[str], start: datetime, end: datetime) -> dict[int, int]:
    """Coupons issued in the range by these stores, per offer."""
    rows = conn.execute(sa.select(coupons.c.offer_id, sa.func.count()).where(
        coupons.c.store_id.in_(store_ids), coupons.c.issued_at >= start, coupons.c.issued_at < end)
        .group_by(coupons.c.offer_id)).all()
    return {int(o): int(n) for o, n in rows}


def booked(conn: Connection, start: datetime, end: datetime, *, mall_id: str | None = None,
           store_id: str | None = None) -> list[Booked]:
    """The ledger rows booked in the range, summed per offer, issuing store (the offer's), redeeming store and staff
    member (:class:`marketing.core.metrics.Booked`): a redemption +1 and a rollback -1 (with their discounts and
    baskets) in the range of their own time; a rollback counts against the staff member of the redemption it
    undoes. The offers of ``mall_id``, or the redemptions at ``store_id`` (one of them). This is the one definition
    of the offer figures and the trade-area settlement (docs/MARKETING.md "Metrics")."""
    if (mall_id is None) == (store_id is None):
        raise TypeError("booked: give exactly one of mall_id and store_id")
    r, undone = redemptions, redemptions.alias("undone")
    sign = sa.case((r.c.kind == "redeem", 1), else_=-1)
    staff = sa.func.coalesce(undone.c.staff, r.c.staff)
    which = offers.c.mall_id == mall_id if mall_id is not None else r.c.store_id == store_id
    rows = conn.execute(
        sa.select(r.c.offer_id, offers.c.store_id, r.c.store_id, staff, sa.func.sum(sign),
                  sa.func.sum(sign * r.c.discount_cents), sa.func.sum(sign * r.c.basket_cents))
        .join(offers, offers.c.id == r.c.offer_id).outerjoin(undone, undone.c.id == r.c.reverses_id)
        .where(which, r.c.ts >= start, r.c.ts < end)
        .group_by(r.c.offer_id, offers.c.store_id, r.c.store_id, staff)
        .order_by(r.c.offer_id, offers.c.store_id, r.c.store_id, staff)).all()
    return [Booked(int(o), str(i), str(at), str(who), int(n or 0), int(d or 0), int(b or 0))
            for o, i, at, who, n, d, b in rows]


def sale_facts(conn: Connection, store_ids: list[str], start: datetime, end: datetime) -> list[SaleFact]:
    """Sales and refunds in the range at these stores."""
    rows = conn.execute(sa.select(sales.c.id, sales.c.kind, sales.c.ts, sales.c.amount_cents, sales.c.member_id,
                                  sales.c.store_id, sales.c.refund_of_id)
                        .where(sales.c.store_id.in_(store_ids), sales.c.ts >= start, sales.c.ts < end)
                        .order_by(sales.c.id)).all()
    return [SaleFact(r.id, r.kind, r.ts, r.amount_cents, r.member_id, r.store_id, r.refund_of_id) for r in rows]
