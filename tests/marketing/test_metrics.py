"""Marketing metrics (pure), and the report rows they are fed from (SQL)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from marketing.core.metrics import (
    Attribution,
    Booked,
    SaleFact,
    attributed_revenue,
    member_purchase_rate,
    offer_figures,
    purchase_conversion,
    settlement,
    staff_figures,
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


def test_offer_figures_settlement_and_staff_from_booked_rows() -> None:
    booked = [Booked(10, "s1", "s1", "ann", 1, 1000, 6000), Booked(10, "s1", "s2", "bob", 0, 0, 0),
              Booked(11, "s2", "s2", "bob", 1, 500, 7000), Booked(13, "s1", "s2", "bob", -1, -1000, -6000)]
    figs = offer_figures({10: 4, 12: 1}, booked)
    assert [(f.offer_id, f.issued, f.redeemed, f.discount_cents, f.basket_cents) for f in figs] == [
        (10, 4, 1, 1000, 6000), (11, 0, 1, 500, 7000), (12, 1, 0, 0, 0), (13, 0, -1, -1000, -6000)]
    assert figs[0].redemption_rate.value == 0.25
    assert staff_figures(booked) == {"ann": (1, 1000), "bob": (0, -500)}
    s = settlement(booked)
    # a pair that nets to nothing is left out; a rollback booked now of an earlier period's redemption is negative
    assert s["pairs"] == [
        {"issued_by": "s1", "redeemed_at": "s1", "redemptions": 1, "discount_cents": 1000, "basket_cents": 6000},
        {"issued_by": "s1", "redeemed_at": "s2", "redemptions": -1, "discount_cents": -1000, "basket_cents": -6000},
        {"issued_by": "s2", "redeemed_at": "s2", "redemptions": 1, "discount_cents": 500, "basket_cents": 7000}]
    assert s["stores"] == [
        {"store": "s1", "issuer_discount_cents": 0, "redeemed_elsewhere": -1, "given_for_others_cents": 0,
         "redeemed_here_for_others": 0},
        {"store": "s2", "issuer_discount_cents": 500, "redeemed_elsewhere": 0, "given_for_others_cents": -1000,
         "redeemed_here_for_others": -1}]


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
        by_mall = reports.booked(conn, start, end, mall_id="m1")
        at_s2 = reports.booked(conn, start, end, store_id="s2")
        assert reports.booked(conn, start, end, mall_id="m2") == []
        assert reports.sale_facts(conn, ["s1"], start, end) == []
    assert [(f.issued, f.redeemed, f.discount_cents) for f in offer_figures(issued, by_mall)] == [(2, 1, 1000)]
    assert [(b.issuing_store, b.redeeming_store, b.staff, b.redemptions, b.discount_cents) for b in by_mall] == [
        ("s1", "s1", "alice", 1, 1000), ("s1", "s2", "alice", 0, 0)]
    assert at_s2 == [by_mall[1]]
    with pytest.raises(TypeError):
        reports.booked(conn, start, end)
