"""Marketing metrics (pure), and the report rows they are fed from (SQL)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from marketing.core.metrics import (
    Attribution,
    LedgerFact,
    SaleFact,
    attributed_revenue,
    discount_cost_by_store,
    member_purchase_rate,
    offer_figures,
    purchase_conversion,
)
from marketing.store import coupons as store
from marketing.store import reports
from tests.marketing.conftest import NOW, tcoupon, toffer, tredeem

T = datetime(2026, 12, 6, tzinfo=UTC)


def tsale(i: int, amount: int, member: int | None = None, kind: str = "sale", of: int | None = None,
          hours: int = 0, store_id: str = "s1") -> SaleFact:
    return SaleFact(i, kind, T + timedelta(hours=hours), amount, member, store_id, of)


def test_purchase_conversion_is_over_linkable_visitors_only() -> None:
    r = purchase_conversion([1, 2, 3, 4], [2, 4, 9])
    assert (r.numerator, r.denominator, r.value) == (2, 4, 0.5)
    assert "linkable" in r.label
    assert purchase_conversion([], [1]).value is None


def test_member_purchase_rate_nets_refunds() -> None:
    count, revenue = member_purchase_rate([tsale(1, 1000, 7), tsale(2, 3000), tsale(3, 400, kind="refund", of=1)])
    assert (count.numerator, count.denominator) == (1, 2)
    assert (revenue.numerator, revenue.denominator) == (600, 3600)


def test_offer_figures_and_settlement_net_of_rollbacks() -> None:
    ledger = [LedgerFact(1, "redeem", 10, "s1", 1000), LedgerFact(2, "redeem", 10, "s2", 1000),
              LedgerFact(3, "rollback", 10, "s2", 1000, reverses=2), LedgerFact(4, "redeem", 11, "s2", 500)]
    figs = offer_figures({10: 4, 12: 1}, ledger)
    assert [(f.offer_id, f.issued, f.redeemed, f.discount_cents) for f in figs] == [
        (10, 4, 1, 1000), (11, 0, 1, 500), (12, 1, 0, 0)]
    assert figs[0].redemption_rate.value == 0.25
    assert discount_cost_by_store(ledger) == {"s1": 1000, "s2": 500}


def test_attributed_revenue_last_touch_and_refunds() -> None:
    day = timedelta(days=15)
    bindings = [Attribution(7, "alice", "s1", T - timedelta(days=1), T - timedelta(days=1) + day),
                Attribution(7, "bob", "s1", T + timedelta(hours=2), T + timedelta(hours=2) + day),
                Attribution(8, "carol", "s2", T, T + day)]
    sales = [tsale(1, 1000, 7, hours=1),        # alice's window only
             tsale(2, 2000, 7, hours=3),        # both windows: bob touched last
             tsale(3, 500, 8, hours=3),         # carol's binding is for s2, the sale is in s1
             tsale(4, 700, None, hours=3),      # not linkable
             tsale(5, 300, kind="refund", of=2, hours=5),
             tsale(6, 100, 7, hours=24 * 20)]   # after every window
    assert attributed_revenue(sales, bindings) == {"alice": 1000, "bob": 1700}


@pytest.mark.integration
def test_report_rows(engine: Engine) -> None:
    offer = toffer(engine, per_member_issue_limit=None, per_member_use_limit=None)
    a, b = tcoupon(engine, offer), tcoupon(engine, offer)
    store.redeem(engine, tredeem(a, "ka"), NOW)
    store.redeem(engine, tredeem(b, "kb", store_id="s2"), NOW)
    store.rollback(engine, store.RollbackRequest("s2", "kb", "rb", "x"), NOW)
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=1)
    with engine.connect() as conn:
        issued = reports.issued_per_offer(conn, ["s1", "s2"], start, end)
        ledger = reports.ledger_facts(conn, ["s1", "s2"], start, end)
        settle = reports.trade_area_settlement(conn, "m1", start, end)
        assert reports.sale_facts(conn, ["s1"], start, end) == []
    assert [(f.issued, f.redeemed, f.discount_cents) for f in offer_figures(issued, ledger)] == [(2, 1, 1000)]
    assert [(s.issuing_store, s.redeeming_store, s.redemptions, s.discount_cents) for s in settle] == [
        ("s1", "s1", 1, 1000), ("s1", "s2", 0, 0)]
