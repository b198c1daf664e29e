"""The dashboard's marketing numbers (marketing.report) on PostgreSQL and SQLite, and their view (pure)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from marketing import report, staff
from marketing.core import dashboard
from marketing.core.offers import OfferSpec
from marketing.store import coupons
from marketing.store.models import sales
from tests.marketing.test_staff_store import T0, engine, tcard, tmember  # noqa: F401  (``engine`` is a fixture)

SINCE, UNTIL = T0 - timedelta(hours=1), T0 + timedelta(days=1)


def toffer(eng: Any, store: str, stores: tuple[str, ...]) -> int:
    spec = OfferSpec(title=f"offer of {store}", kind="amount_off", value=2000, stores=stores, min_spend_cents=10000,
                     valid_days=7, per_member_use_limit=None, per_member_issue_limit=None)
    with eng.begin() as conn:
        return coupons.create_offer(conn, spec, store_id=store, now=T0, created_by="test")


def tissue(eng: Any, offer: int, member: int, store: str) -> str:
    with eng.begin() as conn:
        return coupons.issue_coupon(conn, offer_id=offer, member_id=member, store_id=store, channel="staff",
                                    now=T0).code


def tredeem(eng: Any, code: str, store: str, who: str, basket: int, at: datetime, key: str) -> None:
    coupons.redeem(eng, coupons.RedeemRequest(store_id=store, code=code, idempotency_key=key, basket_cents=basket,
                                              staff=who, source="counter"), at)


def tsale(eng: Any, store: str, txn: str, member: int, cents: int, at: datetime, kind: str = "sale",
          refund_of: str | None = None) -> None:
    with eng.begin() as conn:
        of = None if refund_of is None else conn.execute(sa.select(sales.c.id).where(sales.c.txn_id == refund_of)
                                                         ).scalar()
        conn.execute(sa.insert(sales).values(store_id=store, txn_id=txn, kind=kind, ts=at, amount_cents=cents,
                                             member_id=member, match="phone", row_hash=txn, refund_of_id=of))


def test_marketing_numbers(engine: Any) -> None:  # noqa: F811
    a, b = tmember(engine), tmember(engine, "+8613800000002")
    with engine.begin() as conn:
        staff.scan(conn, a, tcard(engine, "alice"), T0 + timedelta(minutes=30), "Asia/Shanghai")
    o1, o2 = toffer(engine, "s1", ("s1", "s2")), toffer(engine, "s2", ("s2",))
    early = tissue(engine, o1, a, "s1")
    c1a, c1b, c2b = tissue(engine, o1, a, "s1"), tissue(engine, o1, b, "s1"), tissue(engine, o2, b, "s2")
    tredeem(engine, early, "s1", "bob", 12000, T0 + timedelta(minutes=10), "k0")  # before alice's card: not hers
    tredeem(engine, c1a, "s1", "bob", 15000, T0 + timedelta(hours=1), "k1")
    tredeem(engine, c1b, "s2", "carol", 20000, T0 + timedelta(hours=1), "k2")
    tredeem(engine, c2b, "s2", "carol", 20000, T0 + timedelta(hours=2), "k3")
    coupons.rollback(engine, coupons.RollbackRequest(store_id="s2", original_key="k3", idempotency_key="k3-undo",
                                                     staff="carol"), T0 + timedelta(hours=3))
    tsale(engine, "s1", "T1", a, 30000, T0 + timedelta(hours=2))
    tsale(engine, "s1", "T2", a, 5000, T0 + timedelta(hours=3), "refund", refund_of="T1")
    tsale(engine, "s1", "T0", a, 99900, T0 - timedelta(minutes=30))  # before the redemption: no funnel purchase
    tsale(engine, "s2", "T3", b, 10000, T0 + timedelta(hours=2))
    with engine.connect() as conn:
        offers = report.offer_rows(conn, "s1", SINCE, UNTIL)
        funnel = report.funnel(conn, "s1", SINCE, UNTIL)
        board = report.staff_rows(conn, "s1", SINCE, UNTIL)
        s2_funnel = report.funnel(conn, "s2", SINCE, UNTIL)
        settle = report.settlement(conn, "m1", SINCE, UNTIL)
        later = report.offer_rows(conn, "s1", UNTIL, UNTIL + timedelta(days=1))
    assert offers == [{"offer_id": o1, "title": "offer of s1", "kind": "amount_off", "issuing_store": "s1",
                       "issued": 3, "redeemed": 2, "rate": 2 / 3, "discount_cents": 4000, "revenue_cents": 27000}]
    assert later[0]["issued"] == 0 and later[0]["rate"] is None
    assert funnel == {"members_given": 2, "members_redeemed": 1, "members_purchased": 1}
    assert s2_funnel == {"members_given": 1, "members_redeemed": 1, "members_purchased": 1}  # b bought in s2
    # alice holds member a from T0 + 30 min: the later redemption bob made and a's sale after it (net of its
    # refund) are hers; the redemption before the scan and the sale before T0 are nobody's
    assert board == [
        {"staff": "alice", "members_bound": 1, "redemptions": 0, "discount_cents": 0, "attributed_redemptions": 1,
         "attributed_basket_cents": 15000, "attributed_sales_cents": 30000 - 5000, "flags": 0},
        {"staff": "bob", "members_bound": 0, "redemptions": 2, "discount_cents": 4000, "attributed_redemptions": 0,
         "attributed_basket_cents": 0, "attributed_sales_cents": 0, "flags": 0}]
    # the rolled-back redemption of o2 is not counted anywhere
    assert settle["pairs"] == [
        {"issued_by": "s1", "redeemed_at": "s1", "redemptions": 2, "discount_cents": 4000, "basket_cents": 27000},
        {"issued_by": "s1", "redeemed_at": "s2", "redemptions": 1, "discount_cents": 2000, "basket_cents": 20000}]
    assert settle["stores"] == [
        {"store": "s1", "issuer_discount_cents": 6000, "redeemed_elsewhere": 1, "given_for_others_cents": 0,
         "redeemed_here_for_others": 0},
        {"store": "s2", "issuer_discount_cents": 0, "redeemed_elsewhere": 0, "given_for_others_cents": 2000,
         "redeemed_here_for_others": 1}]


def test_local_days_to_instants() -> None:
    assert report.instants(date(2026, 12, 1), date(2026, 12, 1), "Asia/Shanghai") == (
        datetime(2026, 11, 30, 16, tzinfo=UTC), datetime(2026, 12, 1, 16, tzinfo=UTC))
    assert report.instants(date(2026, 12, 1), date(2026, 12, 2), "America/New_York") == (
        datetime(2026, 12, 1, 5, tzinfo=UTC), datetime(2026, 12, 3, 5, tzinfo=UTC))


def test_views_in_both_languages() -> None:
    offers = [{"offer_id": 1, "title": "满100减20", "kind": "amount_off", "issuing_store": "s1", "issued": 4,
               "redeemed": 1, "rate": 0.25, "discount_cents": 2000, "revenue_cents": 123456}]
    funnel = {"members_given": 4, "members_redeemed": 1, "members_purchased": 1}
    zh = dashboard.store_view("zh-CN", {"id": "s1", "name": "一店"}, date(2026, 12, 1), date(2026, 12, 7), offers,
                              funnel, [])
    en = dashboard.store_view("en", {"id": "s1", "name": ""}, date(2026, 12, 1), date(2026, 12, 7), offers, funnel,
                              [])
    assert zh["title"] == "营销 · 一店" and en["title"] == "Marketing · s1"
    assert [c["text"] for c in zh["tables"][0]["rows"][0]] == ["满100减20", "满减", "4", "1", "25.0%", "¥20.00",
                                                               "¥1,234.56"]
    assert en["tables"][0]["columns"][-1] == "Attributed revenue" and en["tables"][1]["rows"][2][0]["text"] == \
        "Bought after redeeming"
