"""Offers (pure): validity windows at local day ends across time zones, discounts, redemption decisions, parsing."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketing.core.offers import (
    CouponView,
    OfferInvalid,
    OfferSpec,
    Window,
    check_redeemable,
    coupon_window,
    discount_cents,
    parse_offer,
    state_at,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LA = ZoneInfo("America/Los_Angeles")


def tspec(**kw: object) -> OfferSpec:
    base: dict[str, object] = {"title": "t", "kind": "amount_off", "value": 1000, "stores": ("s1",)}
    base.update(kw)
    return OfferSpec(**base)  # type: ignore[arg-type]


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]


def test_one_day_offer_issued_at_utc_plus_8_ends_at_local_midnight() -> None:
    # issued at 20:00 Shanghai = 12:00 UTC: the UTC date and the local date agree, but the end is local midnight
    w = coupon_window(tspec(valid_days=1), local(SHANGHAI, 2026, 12, 6, 20, 0), SHANGHAI)
    assert w.expires_at == datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
    at_2359 = local(SHANGHAI, 2026, 12, 6, 23, 59)
    at_0001 = local(SHANGHAI, 2026, 12, 7, 0, 1)
    view = CouponView("issued", w.starts_at, w.expires_at, frozenset({"s1"}), "amount_off", 1000, 0)
    assert check_redeemable(view, "s1", at_2359, 100) is None
    assert check_redeemable(view, "s1", at_0001, 100) == "expired"


def test_issued_after_utc_midnight_but_before_local_midnight() -> None:
    # 07:30 Shanghai on Dec 7 is still Dec 6 in UTC: a UTC-dated expiry would end a day early (mitxpro #991)
    issued = local(SHANGHAI, 2026, 12, 7, 7, 30)
    assert issued.date() == date(2026, 12, 6)
    w = coupon_window(tspec(valid_days=1), issued, SHANGHAI)
    assert w.expires_at == local(SHANGHAI, 2026, 12, 8, 0, 0)


def test_store_west_of_utc() -> None:
    # 20:00 in Los Angeles on Dec 6 is 04:00 UTC on Dec 7; 3 days: Dec 6, 7, 8 → ends at local midnight Dec 9
    issued = local(LA, 2026, 12, 6, 20, 0)
    w = coupon_window(tspec(valid_days=3), issued, LA)
    assert w.expires_at == local(LA, 2026, 12, 9, 0, 0) == datetime(2026, 12, 9, 8, 0, tzinfo=UTC)
    view = CouponView("issued", w.starts_at, w.expires_at, frozenset({"w1"}), "gift", 0, 0)
    assert check_redeemable(view, "w1", local(LA, 2026, 12, 8, 23, 59), 0) is None
    assert check_redeemable(view, "w1", local(LA, 2026, 12, 9, 0, 1), 0) == "expired"


def test_fixed_range_is_whole_local_days() -> None:
    spec = tspec(valid_from=date(2026, 12, 10), valid_to=date(2026, 12, 12))
    w = coupon_window(spec, local(SHANGHAI, 2026, 12, 6, 12, 0), SHANGHAI)
    assert w == Window(local(SHANGHAI, 2026, 12, 10, 0, 0), local(SHANGHAI, 2026, 12, 13, 0, 0))
    view = CouponView("issued", w.starts_at, w.expires_at, frozenset({"s1"}), "gift", 0, 0)
    assert check_redeemable(view, "s1", local(SHANGHAI, 2026, 12, 9, 23, 59), 0) == "not_yet_valid"
    assert check_redeemable(view, "s1", local(SHANGHAI, 2026, 12, 10, 0, 1), 0) is None
    # issued inside the range: valid from issue
    inside = coupon_window(spec, local(SHANGHAI, 2026, 12, 11, 9, 0), SHANGHAI)
    assert inside.starts_at == local(SHANGHAI, 2026, 12, 11, 9, 0)


def test_daylight_saving_day_ends_at_the_local_midnight() -> None:
    # Los Angeles leaves DST on 2026-11-01: that local day has 25 hours
    w = coupon_window(tspec(valid_days=1), local(LA, 2026, 11, 1, 0, 30), LA)
    assert w.expires_at - local(LA, 2026, 11, 1, 0, 0) == timedelta(hours=25)


@pytest.mark.parametrize(("kind", "value", "basket", "cap", "off"), [
    ("amount_off", 1000, 6000, None, 1000),
    ("amount_off", 1000, 500, None, 500),        # never more than the basket
    ("percent_off", 15, 9999, None, 1499),       # rounded down
    ("percent_off", 50, 10000, 2000, 2000),      # capped
    ("gift", 0, 10000, None, 0),
])
def test_discounts(kind: str, value: int, basket: int, cap: int | None, off: int) -> None:
    assert discount_cents(kind, value, basket, cap) == off


def _view(state: str = "issued", stores: frozenset[str] = frozenset({"s1"}), min_spend: int = 5000) -> CouponView:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    return CouponView(state, t0, t0 + timedelta(days=10), stores, "amount_off", 1000, min_spend)


@pytest.mark.parametrize(("view", "store", "basket", "reason"), [
    (_view(), "s1", 5000, None),
    (_view(), "s2", 5000, "wrong_store"),
    (_view(), "s1", 4999, "below_min_spend"),
    (_view("redeemed"), "s1", 5000, "already_redeemed"),
    (_view("voided"), "s1", 5000, "voided"),
    (_view("expired"), "s1", 5000, "expired"),
    (_view("redeemed"), "s2", 5000, "wrong_store"),   # another store learns nothing of the coupon's state
])
def test_redeemable(view: CouponView, store: str, basket: int, reason: str | None) -> None:
    assert check_redeemable(view, store, datetime(2026, 12, 5, tzinfo=UTC), basket) == reason


def test_state_seen_after_the_end_is_expired() -> None:
    end = datetime(2026, 12, 5, tzinfo=UTC)
    assert state_at("issued", end, end) == "expired"
    assert state_at("issued", end, end - timedelta(seconds=1)) == "issued"
    assert state_at("redeemed", end, end) == "redeemed"


ALL = frozenset({"s1", "s2"})


def test_parse_a_full_offer() -> None:
    spec = parse_offer({"title": " 满50减10 ", "kind": "amount_off", "value": 1000, "min_spend_cents": 5000,
                        "valid_days": 7, "stores": ["s1", "s2", "s1"], "budget_daily_cents": 10000,
                        "stackable": True}, "s1", ALL)
    assert spec.title == "满50减10" and spec.stores == ("s1", "s2") and spec.stackable
    assert spec.per_member_issue_limit == 1 and spec.per_member_use_limit == 1


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"),
    ({"kind": "amount_off", "value": 1, "valid_days": 1}, "title"),
    ({"title": "x", "kind": "bogo", "valid_days": 1}, "kind"),
    ({"title": "x", "kind": "amount_off", "valid_days": 1}, "value"),
    ({"title": "x", "kind": "percent_off", "value": 101, "valid_days": 1}, "value"),
    ({"title": "x", "kind": "amount_off", "value": True, "valid_days": 1}, "value"),
    ({"title": "x", "kind": "gift"}, "valid_days"),
    ({"title": "x", "kind": "gift", "valid_days": 1, "valid_from": "2026-12-01", "valid_to": "2026-12-02"},
     "valid_days"),
    ({"title": "x", "kind": "gift", "valid_from": "2026-12-05", "valid_to": "2026-12-01"}, "valid_to"),
    ({"title": "x", "kind": "gift", "valid_from": "12/05/2026", "valid_to": "2026-12-06"}, "valid_from"),
    ({"title": "x", "kind": "gift", "valid_days": 1, "stores": ["x1"]}, "stores"),
    ({"title": "x", "kind": "gift", "valid_days": 1, "stores": []}, "stores"),
    ({"title": "x", "kind": "gift", "valid_days": 1, "surprise": 1}, "surprise"),
    ({"title": "x", "kind": "amount_off", "value": 1000, "min_spend_cents": 500, "valid_days": 1},
     "min_spend_cents"),
    ({"title": "x", "kind": "amount_off", "value": 1000, "max_discount_cents": 5, "valid_days": 1},
     "max_discount_cents"),
    ({"title": "x", "kind": "gift", "valid_days": 1, "stackable": "yes"}, "stackable"),
])
def test_parse_refuses(body: object, field: str) -> None:
    with pytest.raises(OfferInvalid) as err:
        parse_offer(body, "s1", ALL)
    assert err.value.field == field
