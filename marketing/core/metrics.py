"""Marketing metrics (pure): purchase conversion, member purchase rate, redemption rate and discount cost per
offer, attributed revenue per staff member. Plain rows in, frozen values out; the SQL that gathers the rows is
:mod:`marketing.store.reports`.

Conversion is only ever computed over what can be **linked** deterministically (a sale carrying a member QR, a
coupon or a member's phone; a visitor who logged in as a member): every :class:`Rate` carries a ``label`` saying
so, and the dashboard shows it. Anonymous visitors who bought without showing anything are not guessed into it.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


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
class LedgerFact:
    """A ledger row: ``kind`` redeem or rollback (``reverses`` names the redemption a rollback undoes)."""

    id: int
    kind: str
    offer_id: int
    store_id: str
    discount_cents: int
    reverses: int | None = None


@dataclass(frozen=True)
class OfferFigures:
    offer_id: int
    issued: int
    redeemed: int
    discount_cents: int

    @property
    def redemption_rate(self) -> Rate:
        return Rate(self.redeemed, self.issued, "coupons redeemed (net of rollbacks) / issued")


def offer_figures(issued: dict[int, int], ledger: Iterable[LedgerFact]) -> list[OfferFigures]:
    """Per offer: issued (``offer id → coupons issued``), redeemed net of rollbacks, and the discount cost of the
    redemptions still in force."""
    redeemed: dict[int, int] = defaultdict(int)
    cost: dict[int, int] = defaultdict(int)
    for row in ledger:
        sign = 1 if row.kind == "redeem" else -1
        redeemed[row.offer_id] += sign
        cost[row.offer_id] += sign * row.discount_cents
    ids = sorted(set(issued) | set(redeemed))
    return [OfferFigures(i, issued.get(i, 0), redeemed.get(i, 0), cost.get(i, 0)) for i in ids]


def discount_cost_by_store(ledger: Iterable[LedgerFact]) -> dict[str, int]:
    """The discount given at each redeeming store, net of rollbacks (the trade-area settlement's basis)."""
    out: dict[str, int] = defaultdict(int)
    for row in ledger:
        out[row.store_id] += row.discount_cents if row.kind == "redeem" else -row.discount_cents
    return dict(out)


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
