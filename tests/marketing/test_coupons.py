"""Offers, coupons and the redemption ledger on real SQLite and PostgreSQL: issue limits, redemption and its
replay, rollback, budgets, stores and malls, stacking, the member erasure hook."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketing.store import coupons as store
from marketing.store import erase_member
from marketing.store.models import coupons, member_offers, offer_days, offers, redemptions
from portal.store.marketing_members import PortalMembers
from tests.marketing.conftest import MEMBER_NO, MEMBER_YES, NOW, tcoupon, toffer, tredeem

pytestmark = pytest.mark.integration


def count(engine: Engine, table: sa.Table, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def test_redeem_then_replay_then_mismatch(engine: Engine) -> None:
    code = tcoupon(engine, toffer(engine))
    first = store.redeem(engine, tredeem(code, "k1"), NOW)
    assert (first.kind, first.discount_cents, first.replayed) == ("redeem", 1000, False)
    again = store.redeem(engine, tredeem(code.lower(), "k1"), NOW + timedelta(minutes=5))
    assert again.replayed and again.id == first.id and again.body() == first.body()
    with pytest.raises(store.IdempotencyMismatch):
        store.redeem(engine, tredeem(code, "k1", basket=7000), NOW)
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(code, "k2"), NOW)
    assert (err.value.reason, err.value.status) == ("already_redeemed", 409)
    assert count(engine, redemptions) == 1


def test_unknown_and_mistyped_codes(engine: Engine) -> None:
    code = tcoupon(engine, toffer(engine))
    typo = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(typo), NOW)
    assert (err.value.reason, err.value.status) == ("invalid_code", 404)
    from marketing.core import codes

    other = codes.from_random(bytes(10))
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(other), NOW)
    assert (err.value.reason, err.value.status) == ("unknown_code", 404)


def test_trade_area_offer_redeems_in_its_stores_only(engine: Engine) -> None:
    offer = toffer(engine, stores=["s1", "s2"])
    code = tcoupon(engine, offer)
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(code, store_id="x1"), NOW)   # another mall's store
    assert (err.value.reason, err.value.status) == ("wrong_store", 403)
    out = store.redeem(engine, tredeem(code, store_id="s2"), NOW)  # issued by s1, redeemed at s2
    assert out.store_id == "s2"
    with engine.connect() as conn:
        assert conn.execute(sa.select(coupons.c.store_id, coupons.c.state)).one() == ("s1", "redeemed")


def test_an_offer_spans_one_mall_and_one_time_zone(engine: Engine) -> None:
    from marketing.core.offers import OfferInvalid

    with pytest.raises(OfferInvalid):
        toffer(engine, stores=["s1", "x1"])
    with pytest.raises(OfferInvalid):
        toffer(engine, stores=["s1", "w1"])


def test_expiry_at_the_redeeming_stores_local_midnight(engine: Engine) -> None:
    offer = toffer(engine, valid_days=1)
    code = tcoupon(engine, offer)            # NOW = 18:00 in Shanghai: valid until 24:00 Shanghai = 16:00 UTC
    end = NOW.replace(hour=16)
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(code, "late"), end + timedelta(minutes=1))
    assert err.value.reason == "expired"
    assert store.redeem(engine, tredeem(code, "in-time"), end - timedelta(minutes=1)).kind == "redeem"


def test_min_spend(engine: Engine) -> None:
    code = tcoupon(engine, toffer(engine))
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(code, basket=4999), NOW)
    assert err.value.reason == "below_min_spend"
    assert count(engine, redemptions) == 0


def test_rollback_restores_state_limits_and_budgets(engine: Engine) -> None:
    offer = toffer(engine, budget_total_cents=1500, budget_daily_cents=1000)
    a, b = tcoupon(engine, offer, member_id=None), tcoupon(engine, offer, member_id=None)
    store.redeem(engine, tredeem(a, "ka"), NOW)
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(b, "kb"), NOW)
    assert err.value.reason == "budget_exhausted"
    # the coupon refused for the budget is untouched; rolling back the first frees the budget
    back = store.rollback(engine, store.RollbackRequest("s1", "ka", "rb-a", "alice"), NOW)
    assert back.kind == "rollback" and back.reverses_id is not None
    assert store.rollback(engine, store.RollbackRequest("s1", "ka", "rb-a", "alice"), NOW).replayed
    with pytest.raises(store.Refused) as err:
        store.rollback(engine, store.RollbackRequest("s1", "ka", "rb-a2", "alice"), NOW)
    assert err.value.reason == "already_rolled_back"
    with engine.connect() as conn:
        assert conn.execute(sa.select(offers.c.spent_cents)).scalar() == 0
        assert conn.execute(sa.select(offer_days.c.spent_cents)).scalar() == 0
        assert conn.execute(sa.select(coupons.c.state).where(coupons.c.code == a)).scalar() == "issued"
    assert store.redeem(engine, tredeem(b, "kb2"), NOW).discount_cents == 1000
    # the rolled-back coupon may be used again, within the budget left (1,500 - 1,000)
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(a, "ka2"), NOW)
    assert err.value.reason == "budget_exhausted"   # the day's 1,000 is spent (total would allow 500)
    with pytest.raises(store.Refused) as err:
        store.rollback(engine, store.RollbackRequest("s1", "nope", "rb-x", "alice"), NOW)
    assert (err.value.reason, err.value.status) == ("unknown_redemption", 404)


def test_daily_budget_resets_on_the_next_local_day(engine: Engine) -> None:
    offer = toffer(engine, budget_daily_cents=1000)
    a, b = tcoupon(engine, offer, member_id=None), tcoupon(engine, offer, member_id=None)
    store.redeem(engine, tredeem(a, "ka"), NOW)
    with pytest.raises(store.Refused):
        store.redeem(engine, tredeem(b, "kb"), NOW)
    next_local_day = NOW.replace(hour=16, minute=1)       # 00:01 in Shanghai
    assert store.redeem(engine, tredeem(b, "kb2"), next_local_day).discount_cents == 1000


def test_per_member_issue_and_use_limits(engine: Engine) -> None:
    offer = toffer(engine, per_member_issue_limit=2, per_member_use_limit=1)
    a = tcoupon(engine, offer)
    b = tcoupon(engine, offer)
    with pytest.raises(store.Refused) as err:
        tcoupon(engine, offer)
    assert err.value.reason == "member_limit"
    store.redeem(engine, tredeem(a, "ka"), NOW)
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(b, "kb"), NOW)
    assert err.value.reason == "use_limit"
    store.rollback(engine, store.RollbackRequest("s1", "ka", "rb", "alice"), NOW)
    assert store.redeem(engine, tredeem(b, "kb2"), NOW).kind == "redeem"
    with engine.connect() as conn:
        assert conn.execute(sa.select(member_offers.c.issued, member_offers.c.used)).one() == (2, 1)


def test_total_issue_cap_and_inactive_offer(engine: Engine) -> None:
    offer = toffer(engine, max_issued=1, per_member_issue_limit=None)
    tcoupon(engine, offer)
    with pytest.raises(store.Refused) as err:
        tcoupon(engine, offer)
    assert err.value.reason == "issue_limit"
    other = toffer(engine)
    with engine.begin() as conn:
        store.set_active(conn, other, False)
    with pytest.raises(store.Refused) as err:
        tcoupon(engine, other)
    assert err.value.reason == "offer_inactive"


def test_stacking_on_one_pos_transaction(engine: Engine) -> None:
    solo = toffer(engine, per_member_issue_limit=None)
    stack = toffer(engine, stackable=True, per_member_issue_limit=None, per_member_use_limit=None)
    s1, s2 = tcoupon(engine, stack), tcoupon(engine, stack)
    n1 = tcoupon(engine, solo)
    store.redeem(engine, tredeem(s1, "a", txn="T1"), NOW)
    store.redeem(engine, tredeem(s2, "b", txn="T1"), NOW)        # two stackable: fine
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(n1, "c", txn="T1"), NOW)    # a non-stackable joins: refused
    assert err.value.reason == "not_stackable"
    assert store.redeem(engine, tredeem(n1, "d", txn="T2"), NOW).kind == "redeem"


def test_issue_to_member_needs_marketing_consent(engine: Engine, members: PortalMembers) -> None:
    offer = toffer(engine)
    with engine.begin() as conn:
        got = store.issue_to_member(conn, members, offer_id=offer, member_id=MEMBER_YES, store_id="s1",
                                    channel="staff", now=NOW, issued_by="alice")
        assert got.offer_id == offer
    with engine.begin() as conn, pytest.raises(store.Refused) as err:
        store.issue_to_member(conn, members, offer_id=offer, member_id=MEMBER_NO, store_id="s1", channel="staff",
                              now=NOW)
    assert err.value.reason == "no_consent"
    assert count(engine, coupons) == 1


def test_welcome_coupons_once_and_only_with_consent(engine: Engine, members: PortalMembers) -> None:
    toffer(engine, on_login=True, title="Welcome")
    toffer(engine, title="Not on login")
    assert store.welcome_coupons(engine, members, member_id=MEMBER_NO, store_id="s1", now=NOW) == []
    first = store.welcome_coupons(engine, members, member_id=MEMBER_YES, store_id="s1", now=NOW)
    again = store.welcome_coupons(engine, members, member_id=MEMBER_YES, store_id="s1", now=NOW)
    assert [c.title for c in first] == ["Welcome"] and first == again
    assert count(engine, coupons) == 1
    assert store.welcome_coupons(engine, members, member_id=MEMBER_YES, store_id="x1", now=NOW) == []


def test_void_and_expire(engine: Engine) -> None:
    offer = toffer(engine, valid_days=1, per_member_issue_limit=None)
    a, b = tcoupon(engine, offer), tcoupon(engine, offer)
    with engine.begin() as conn:
        assert store.void_coupon(conn, a, NOW)
        assert store.expire_due(conn, NOW + timedelta(days=1)) == 1
    with pytest.raises(store.Refused) as err:
        store.redeem(engine, tredeem(a), NOW)
    assert err.value.reason == "voided"
    with engine.connect() as conn:
        d = store.coupon_details(conn, b, "s1", NOW + timedelta(days=1))
    assert d is not None and d.state == "expired" and d.refusal == "expired"


def test_erase_member_unlinks_everything(engine: Engine) -> None:
    offer = toffer(engine, per_member_issue_limit=None)
    a, _b = tcoupon(engine, offer), tcoupon(engine, offer)
    store.redeem(engine, tredeem(a), NOW)
    with engine.begin() as conn:
        done = erase_member(conn, MEMBER_YES, NOW)
        conn.execute(sa.text("DELETE FROM consents WHERE member_id = :m"), {"m": MEMBER_YES})
        conn.execute(sa.text("DELETE FROM members WHERE id = :m"), {"m": MEMBER_YES})
    assert done["coupons"] == 2 and done["redemptions"] == 1 and done["coupons_voided"] == 1
    assert count(engine, coupons, coupons.c.member_id.is_not(None)) == 0
    assert count(engine, redemptions) == 1   # the books keep the amount


def test_staff_of_one_store_cannot_redeem_at_another(engine: Engine) -> None:
    from keliu.accounts.users import AdminUser

    code = tcoupon(engine, toffer(engine, stores=["s1", "s2"]))
    staff_a = AdminUser("ann", "staff", store_id="s1")
    with pytest.raises(store.Refused) as err:
        store.redeem_as(engine, staff_a, tredeem(code, store_id="s2"), NOW)
    assert (err.value.reason, err.value.status) == ("staff_store", 403)
    assert count(engine, redemptions) == 0
    mall_b = AdminUser("bo", "mall", mall_id="m2")
    with pytest.raises(store.Refused):
        store.redeem_as(engine, mall_b, tredeem(code, store_id="s1"), NOW)
    assert store.redeem_as(engine, staff_a, tredeem(code, store_id="s1"), NOW).kind == "redeem"
