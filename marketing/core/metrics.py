"""Marketing metrics (pure): purchase conversion, member purchase rate, redemption rate and discount cost per
offer, the trade-area settlement, attributed revenue per staff member. Plain rows in, frozen values out; the SQL
that gathers the rows is :mod:`marketing.store.reports`.

Money is booked, never restated: a redemption counts in the period of its time, a rollback in the period of its
own time (:class:`Booked`), so a closed period's offer figures and settlement never change afterwards.

Conversion is only ever computed over what can be **linked** deterministically (a sale carrying a member QR, a
coupon or a member's phone; a visitor who logged in as a member): every :class:`Rate` carries a ``label`` saying
so, and the dashboard shows it. Anonymous visitors who bought without showing anything are not guessed into it.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int
    #: what the rate is over (shown beside the figure)
    label: str

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator


def purchase_conversion(member_visitors: Iterable[int], buying_members: Iterable[int]) -> Rate:
    """Members who visited (logged in on the Wi-Fi) in the period → those of them with a linked purchase in it.
    Linkable only: anonymous visitors and unlinked sales are outside both counts."""
    visited = set(member_visitors)
    bought = visited & set(buying_members)
    return Rate(len(bought), len(visited), "linkable only: member visitors → member buyers")


@dataclass(frozen=True)
class SaleFact:
    """A sale or refund as the metrics need it (``refund_of``: the sale's id for a refund)."""

    id: int
    kind: str
    ts: datetime
    amount_cents: int
    member_id: int | None
    store_id: str = ""
    refund_of: int | None = None


def member_purchase_rate(sales: Iterable[SaleFact]) -> tuple[Rate, Rate]:
    """The share of sales (by count, and by net revenue in cents) linked to a member."""
    n = n_member = 0
    revenue: dict[int, int] = {}
    member_of: dict[int, int | None] = {}
    refunds: list[SaleFact] = []
    for s in sales:
        if s.kind == "sale":
            n += 1
            n_member += s.member_id is not None
            revenue[s.id] = s.amount_cents
            member_of[s.id] = s.member_id
        else:
            refunds.append(s)
    for r in refunds:
        if r.refund_of in revenue:
            revenue[r.refund_of] -= r.amount_cents
    total = sum(revenue.values())
    linked = sum(v for k, v in revenue.items() if member_of[k] is not None)
    return (Rate(n_member, n, "sales linked to a member (QR, coupon or phone)"),
            Rate(linked, total, "net revenue linked to a member (QR, coupon or phone)"))


@dataclass(frozen=True)
class Booked:
    """Ledger rows booked in a period, summed (:func:`marketing.store.reports.booked`): for one offer, its issuing
    store (the offer's: who pays for the discount), the store where it was redeemed and the staff member who
    redeemed, the redemptions booked in the period minus the rollbacks booked in it, and their discounts and
    baskets likewise. A rollback counts in the period of its own time, against the redemption's store and staff
    member, so a closed period's figures never change."""

    offer_id: int
    issuing_store: str
    redeeming_store: str
    staff: str
    redemptions: int
    discount_cents: int
    basket_cents: int


@dataclass(frozen=True)
class OfferFigures:
    offer_id: int
    issued: int
    redeemed: int
    discount_cents: int
    basket_cents: int = 0

    @property
    def redemption_rate(self) -> Rate:
        return Rate(self.redeemed, self.issued, "coupons redeemed (net of rollbacks) / issued")


def offer_figures(issued: Mapping[int, int], booked: Iterable[Booked]) -> list[OfferFigures]:
    """Per offer (by id): coupons issued (``offer id → coupons issued``), redemptions net of rollbacks, their
    discount cost and baskets, as booked (:class:`Booked`)."""
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for b in booked:
        s = sums[b.offer_id]
        s[0] += b.redemptions
        s[1] += b.discount_cents
        s[2] += b.basket_cents
    ids = sorted(set(issued) | set(sums))
    return [OfferFigures(i, issued.get(i, 0), *sums.get(i, (0, 0, 0))) for i in ids]


def staff_figures(booked: Iterable[Booked]) -> dict[str, tuple[int, int]]:
    """Per staff member who redeemed: ``(redemptions, discount cents)`` net of rollbacks, as booked."""
    out: dict[str, tuple[int, int]] = {}
    for b in booked:
        n, d = out.get(b.staff, (0, 0))
        out[b.staff] = (n + b.redemptions, d + b.discount_cents)
    return out


def settlement(booked: Iterable[Booked]) -> dict[str, Any]:
    """The trade-area settlement of a period: ``pairs`` per (issuing store, redeeming store) with the redemptions,
    discount and baskets booked; ``stores`` per store: what its own coupons cost wherever redeemed
    (``issuer_discount_cents``), how many were redeemed elsewhere, and what it gave on other stores' coupons
    (``given_for_others_cents``, ``redeemed_here_for_others``): what the issuer owes the redeemer."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in booked:
        s = sums[(row.issuing_store, row.redeeming_store)]
        s[0] += row.redemptions
        s[1] += row.discount_cents
        s[2] += row.basket_cents
    pairs: list[dict[str, Any]] = [
        {"issued_by": i, "redeemed_at": r, "redemptions": n, "discount_cents": d, "basket_cents": basket}
        for (i, r), (n, d, basket) in sorted(sums.items()) if (n, d, basket) != (0, 0, 0)]
    zero = {"issuer_discount_cents": 0, "redeemed_elsewhere": 0, "given_for_others_cents": 0,
            "redeemed_here_for_others": 0}
    per: dict[str, dict[str, int]] = {}
    for p in pairs:
        issuer = per.setdefault(p["issued_by"], dict(zero))
        redeemer = per.setdefault(p["redeemed_at"], dict(zero))
        issuer["issuer_discount_cents"] += p["discount_cents"]
        if p["issued_by"] != p["redeemed_at"]:
            issuer["redeemed_elsewhere"] += p["redemptions"]
            redeemer["given_for_others_cents"] += p["discount_cents"]
            redeemer["redeemed_here_for_others"] += p["redemptions"]
    return {"pairs": pairs, "stores": [{"store": s, **v} for s, v in sorted(per.items())]}


@dataclass(frozen=True)
class Attribution:
    """A member bound to a staff member in a store from ``start`` until ``end`` (the attribution window; the
    ``card`` helper's table supplies these rows)."""

    member_id: int
    staff: str
    store_id: str
    start: datetime
    end: datetime


def attributed_revenue(sales: Iterable[SaleFact], bindings: Iterable[Attribution]) -> dict[str, int]:
    """Net revenue in cents per staff member: a member's sale in a store is attributed to the binding of that
    member and store whose window holds the sale's time, the latest-started one if several do (last touch wins);
    a refund is taken off the staff member its sale was attributed to. Unlinked sales are attributed to nobody."""
    by_key: dict[tuple[int, str], list[Attribution]] = defaultdict(list)
    for b in bindings:
        by_key[(b.member_id, b.store_id)].append(b)
    for v in by_key.values():
        v.sort(key=lambda b: b.start, reverse=True)
    staff_of_sale: dict[int, str] = {}
    out: dict[str, int] = defaultdict(int)
    refunds: list[SaleFact] = []
    for s in sales:
        if s.kind != "sale":
            refunds.append(s)
            continue
        if s.member_id is None:
            continue
        for b in by_key.get((s.member_id, s.store_id), ()):
            if b.start <= s.ts < b.end:
                staff_of_sale[s.id] = b.staff
                out[b.staff] += s.amount_cents
                break
    for r in refunds:
        staff = staff_of_sale.get(r.refund_of) if r.refund_of is not None else None
        if staff is not None:
            out[staff] -= r.amount_cents
    return dict(out)
