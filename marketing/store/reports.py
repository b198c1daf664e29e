"""The rows the marketing metrics need, read from the ledger, coupons and sales (an edge: SQL); the dashboard's
marketing section calls these and hands the rows to :mod:`marketing.core.metrics`.

Ranges are half-open instants ``[start, end)`` (the caller turns local days into instants in the store's zone).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketing.core.metrics import LedgerFact, SaleFact
from marketing.store.models import coupons, offers, redemptions, sales


def issued_per_offer(conn: Connection, store_ids: list[str], start: datetime, end: datetime) -> dict[int, int]:
    """Coupons issued in the range by these stores, per offer."""
    rows = conn.execute(sa.select(coupons.c.offer_id, sa.func.count()).where(
        coupons.c.store_id.in_(store_ids), coupons.c.issued_at >= start, coupons.c.issued_at < end)
        .group_by(coupons.c.offer_id)).all()
    return {int(o): int(n) for o, n in rows}


def ledger_facts(conn: Connection, store_ids: list[str], start: datetime, end: datetime) -> list[LedgerFact]:
    """Redemptions and rollbacks booked in the range at these (redeeming) stores."""
    rows = conn.execute(sa.select(redemptions.c.id, redemptions.c.kind, redemptions.c.offer_id,
                                  redemptions.c.store_id, redemptions.c.discount_cents, redemptions.c.reverses_id)
                        .where(redemptions.c.store_id.in_(store_ids), redemptions.c.ts >= start,
                               redemptions.c.ts < end).order_by(redemptions.c.id)).all()
    return [LedgerFact(r.id, r.kind, r.offer_id, r.store_id, r.discount_cents, r.reverses_id) for r in rows]


def sale_facts(conn: Connection, store_ids: list[str], start: datetime, end: datetime) -> list[SaleFact]:
    """Sales and refunds in the range at these stores."""
    rows = conn.execute(sa.select(sales.c.id, sales.c.kind, sales.c.ts, sales.c.amount_cents, sales.c.member_id,
                                  sales.c.store_id, sales.c.refund_of_id)
                        .where(sales.c.store_id.in_(store_ids), sales.c.ts >= start, sales.c.ts < end)
                        .order_by(sales.c.id)).all()
    return [SaleFact(r.id, r.kind, r.ts, r.amount_cents, r.member_id, r.store_id, r.refund_of_id) for r in rows]


@dataclass(frozen=True)
class Settlement:
    """The trade-area settlement: offers of ``issuing_store`` redeemed at ``redeeming_store``."""

    issuing_store: str
    redeeming_store: str
    redemptions: int
    discount_cents: int


def trade_area_settlement(conn: Connection, mall_id: str, start: datetime, end: datetime) -> list[Settlement]:
    """Per (issuing store, redeeming store) of a mall: redemptions net of rollbacks and their discount cost."""
    sign = sa.case((redemptions.c.kind == "redeem", 1), else_=-1)
    rows = conn.execute(sa.select(offers.c.store_id.label("issuer"), redemptions.c.store_id.label("at"),
                                  sa.func.sum(sign), sa.func.sum(sign * redemptions.c.discount_cents))
                        .join(offers, offers.c.id == redemptions.c.offer_id)
                        .where(offers.c.mall_id == mall_id, redemptions.c.ts >= start, redemptions.c.ts < end)
                        .group_by(offers.c.store_id, redemptions.c.store_id)
                        .order_by(offers.c.store_id, redemptions.c.store_id)).all()
    return [Settlement(r.issuer, r.at, int(r[2] or 0), int(r[3] or 0)) for r in rows]
