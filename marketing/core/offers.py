"""Offers: what a coupon is worth, where and until when it may be used, and what may be issued (pure).

An :class:`OfferSpec` is checked once when the offer is created (:func:`parse_offer` turns an API body into one or
raises :class:`OfferInvalid` naming the field). Everything a redemption decides from it is here and plain:

- :func:`coupon_window`: the absolute UTC instants a coupon is valid between. A fixed range is given as local dates
  (first and last day), a relative one as N days from issue; either way the coupon ends at the **end of a local
  day** (the next local midnight) in the time zone of the stores that may redeem it, computed once at issue and
  stored as an instant. Comparing instants at redemption cannot be a day off whatever the server's or the POS's
  zone (mitxpro #991, woocommerce-ios #6254). An offer's redeeming stores share one time zone (checked at
  creation), so "the redeeming store's day" is one day.
- :func:`discount_cents`: ``amount_off`` (满减: at least ``min_spend``, never more than the basket), ``percent_off``
  (rounded down, capped by ``max_discount_cents``), ``gift`` (no money off: a gift handed over; min spend applies).
- :func:`check_redeemable`: the reasons a coupon may not be redeemed now, in the order the API answers them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marketing.errors import FieldInvalid

Kind = Literal["amount_off", "percent_off", "gift"]
KINDS: tuple[Kind, ...] = ("amount_off", "percent_off", "gift")
#: the largest amount in cents anything here accepts (¥10 million): bigger is a typo or an attack
MAX_CENTS = 1_000_000_000
MAX_DAYS = 3660


class OfferInvalid(FieldInvalid):
    """An offer that cannot be created: ``field`` names what is wrong."""


@dataclass(frozen=True)
class OfferSpec:
    """An offer as created (the ``offers`` row holds these, plus its counters)."""

    title: str
    kind: Kind
    #: amount_off: cents off; percent_off: percent (1–100); gift: 0
    value: int
    #: the stores where it may be redeemed (the issuing store alone, or several: a trade-area offer)
    stores: tuple[str, ...]
    min_spend_cents: int = 0
    #: percent_off only: the most it takes off one basket
    max_discount_cents: int | None = None
    #: a fixed range of local days (both inclusive) …
    valid_from: date | None = None
    valid_to: date | None = None
    #: … or N days from the day of issue (1 = the day of issue only)
    valid_days: int | None = None
    #: budget of discount in cents, in total and per local day (None: no limit)
    budget_total_cents: int | None = None
    budget_daily_cents: int | None = None
    #: coupons that may be issued in total (None: no limit)
    max_issued: int | None = None
    #: coupons one member may get, and redeem, of this offer (None: no limit)
    per_member_issue_limit: int | None = 1
    per_member_use_limit: int | None = 1
    #: may be combined with another coupon on one POS transaction
    stackable: bool = False
    #: issued on the Wi-Fi success page to members who consented to marketing
    on_login: bool = False


@dataclass(frozen=True)
class Window:
    """When a coupon is valid: ``starts_at <= now < expires_at`` (absolute UTC instants)."""

    starts_at: datetime
    expires_at: datetime


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OfferInvalid("timezone", f"unknown time zone {name!r}") from exc


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant the local ``day`` begins in ``tz`` (the first instant of the day across a DST change)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    """The local calendar day of an instant."""
    return instant.astimezone(tz).date()


def coupon_window(spec: OfferSpec, issued_at: datetime, tz: ZoneInfo) -> Window:
    """The validity of a coupon of ``spec`` issued at ``issued_at``, in the redeeming stores' zone ``tz``.

    Fixed range: from the local start of ``valid_from`` (or issue, if later) until the next local midnight after
    ``valid_to``. Relative: from issue until the local midnight that ends day ``issue day + valid_days - 1``.
    """
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    if spec.valid_days is not None:
        last = local_day(issued_at, tz) + timedelta(days=spec.valid_days - 1)
        return Window(issued_at.astimezone(UTC), local_midnight(last + timedelta(days=1), tz))
    assert spec.valid_from is not None and spec.valid_to is not None
    start = max(local_midnight(spec.valid_from, tz), issued_at.astimezone(UTC))
    return Window(start, local_midnight(spec.valid_to + timedelta(days=1), tz))


def can_issue(spec: OfferSpec, issued_at: datetime, tz: ZoneInfo) -> bool:
    """Whether a coupon issued now would still be usable (a fixed range not over)."""
    w = coupon_window(spec, issued_at, tz)
    return w.starts_at < w.expires_at


def discount_cents(kind: str, value: int, basket_cents: int, max_discount_cents: int | None = None) -> int:
    """Money off a basket of ``basket_cents`` (never more than the basket, never negative)."""
    if kind == "amount_off":
        off = value
    elif kind == "percent_off":
        off = basket_cents * value // 100
        if max_discount_cents is not None:
            off = min(off, max_discount_cents)
    else:
        off = 0
    return max(0, min(off, basket_cents))


# --- redemption decisions ---------------------------------------------------------------------------------------

#: why a coupon may not be redeemed → the HTTP status the API answers
REFUSALS: dict[str, int] = {
    "unknown_code": 404,
    "invalid_code": 404,
    "wrong_store": 403,
    "staff_store": 403,
    "already_redeemed": 409,
    "voided": 409,
    "expired": 409,
    "not_yet_valid": 409,
    "below_min_spend": 409,
    "use_limit": 409,
    "budget_exhausted": 409,
    "daily_budget_exhausted": 409,
    "not_stackable": 409,
    "issue_limit": 409,
    "member_limit": 409,
    "no_consent": 409,
    "offer_inactive": 409,
    "unknown_redemption": 404,
    "already_rolled_back": 409,
    "unknown_sale": 409,
    "unknown_offer": 404,
    "not_a_member": 409,
    "refund_too_large": 409,
}


@dataclass(frozen=True)
class CouponView:
    """What a redemption decision needs of a coupon and its offer."""

    state: str
    starts_at: datetime
    expires_at: datetime
    stores: frozenset[str]
    kind: str
    value: int
    min_spend_cents: int
    max_discount_cents: int | None = None


def check_redeemable(c: CouponView, store_id: str, now: datetime, basket_cents: int) -> str | None:
    """The first reason ``c`` may not be redeemed in ``store_id`` at ``now`` for a basket of ``basket_cents``,
    or ``None``. (Limits and budgets are the database's to hold, in the same transaction.)"""
    if store_id not in c.stores:
        return "wrong_store"
    if c.state == "redeemed":
        return "already_redeemed"
    if c.state == "voided":
        return "voided"
    if c.state == "expired" or now >= c.expires_at:
        return "expired"
    if now < c.starts_at:
        return "not_yet_valid"
    if basket_cents < c.min_spend_cents:
        return "below_min_spend"
    return None


def state_at(state: str, expires_at: datetime, now: datetime) -> str:
    """The state a client sees: an issued coupon past its end is ``expired`` even before a sweep marks it."""
    return "expired" if state == "issued" and now >= expires_at else state


# --- parsing an API body ------------------------------------------------------------------------------------------


def _int(body: dict[str, Any], key: str, lo: int, hi: int, default: int | None = None,
         required: bool = False) -> int | None:
    v = body.get(key, default)
    if v is None:
        if required:
            raise OfferInvalid(key, "required")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise OfferInvalid(key, "an integer")
    if not lo <= v <= hi:
        raise OfferInvalid(key, f"between {lo} and {hi}")
    return int(v)


def _date(body: dict[str, Any], key: str) -> date | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise OfferInvalid(key, "a date YYYY-MM-DD")
    try:
        return date.fromisoformat(v)
    except ValueError as exc:
        raise OfferInvalid(key, "a date YYYY-MM-DD") from exc


FIELDS = frozenset({"title", "kind", "value", "stores", "min_spend_cents", "max_discount_cents", "valid_from",
                    "valid_to", "valid_days", "budget_total_cents", "budget_daily_cents", "max_issued",
                    "per_member_issue_limit", "per_member_use_limit", "stackable", "on_login"})


def parse_offer(body: Any, issuing_store: str, allowed_stores: frozenset[str]) -> OfferSpec:
    """An API body → :class:`OfferSpec`; ``allowed_stores`` are the stores the offer may name (its mall's stores
    the caller may act for). Raises :class:`OfferInvalid` for the first wrong field."""
    if not isinstance(body, dict):
        raise OfferInvalid("body", "a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise OfferInvalid(unknown[0], "unknown field")
    title = body.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        raise OfferInvalid("title", "1 to 200 characters")
    kind = body.get("kind")
    if kind not in KINDS:
        raise OfferInvalid("kind", f"one of {', '.join(KINDS)}")
    if kind == "amount_off":
        value = _int(body, "value", 1, MAX_CENTS, required=True)
    elif kind == "percent_off":
        value = _int(body, "value", 1, 100, required=True)
    else:
        value = _int(body, "value", 0, 0, default=0)
    stores_raw = body.get("stores", [issuing_store])
    if (not isinstance(stores_raw, list) or not stores_raw or len(stores_raw) > 500
            or not all(isinstance(s, str) for s in stores_raw)):
        raise OfferInvalid("stores", "a non-empty list of store ids")
    stores = tuple(dict.fromkeys(stores_raw))
    for s in stores:
        if s not in allowed_stores:
            raise OfferInvalid("stores", f"{s!r} is not a store of this mall you may act for")
    valid_from, valid_to = _date(body, "valid_from"), _date(body, "valid_to")
    valid_days = _int(body, "valid_days", 1, MAX_DAYS)
    if valid_days is not None and (valid_from is not None or valid_to is not None):
        raise OfferInvalid("valid_days", "either valid_days or valid_from/valid_to, not both")
    if valid_days is None:
        if valid_from is None or valid_to is None:
            raise OfferInvalid("valid_days", "give valid_days, or valid_from and valid_to")
        if valid_to < valid_from:
            raise OfferInvalid("valid_to", "before valid_from")
        if (valid_to - valid_from).days > MAX_DAYS:
            raise OfferInvalid("valid_to", f"at most {MAX_DAYS} days after valid_from")
    min_spend = _int(body, "min_spend_cents", 0, MAX_CENTS, default=0)
    max_discount = _int(body, "max_discount_cents", 1, MAX_CENTS)
    if max_discount is not None and kind != "percent_off":
        raise OfferInvalid("max_discount_cents", "only for percent_off")
    if kind == "amount_off" and min_spend is not None and value is not None and 0 < min_spend < value:
        raise OfferInvalid("min_spend_cents", "below the amount off")
    for flag in ("stackable", "on_login"):
        if flag in body and not isinstance(body[flag], bool):
            raise OfferInvalid(flag, "true or false")
    return OfferSpec(
        title=title.strip(), kind=kind, value=int(value or 0), stores=stores,
        min_spend_cents=int(min_spend or 0), max_discount_cents=max_discount,
        valid_from=valid_from, valid_to=valid_to, valid_days=valid_days,
        budget_total_cents=_int(body, "budget_total_cents", 0, MAX_CENTS * 100),
        budget_daily_cents=_int(body, "budget_daily_cents", 0, MAX_CENTS * 100),
        max_issued=_int(body, "max_issued", 0, 100_000_000),
        per_member_issue_limit=_int(body, "per_member_issue_limit", 1, 10_000, default=1),
        per_member_use_limit=_int(body, "per_member_use_limit", 1, 10_000, default=1),
        stackable=bool(body.get("stackable", False)), on_login=bool(body.get("on_login", False)))
