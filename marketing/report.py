"""The marketing numbers of the dashboard (an edge: SQL, read only): offers, the coupon funnel, the staff
leaderboard and the trade-area settlement, over a range of instants ``[since, until)``.

Money (the offer figures, the settlement, the redemptions a staff member made) is *booked*
(:func:`marketing.store.reports.booked`): a redemption counts in the range of its time, a rollback subtracts in the
range of its own time, so a closed period never changes. Members (the funnel, the redemptions attributed to a
staff member) count the redemptions *in force*: a member whose redemption was rolled back did not redeem.
A staff member is credited with an event (a redemption, a sale) of a member when that member was bound to them in
that store at the event's instant (:mod:`marketing.core.attribution`: the latest scan at or before it, inside its
window), computed here in SQL for redemptions, and for sales by :func:`marketing.core.metrics.attributed_revenue` over
:func:`marketing.staff.attribution_rows`. Sales are the POS transactions linked to a member (by the member QR, a
coupon or the phone number, never by guess); a refund subtracts from the staff member its sale was credited to.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketing.core import metrics
from marketing.staff import attribution_rows, staff_bindings, staff_flags
from marketing.store import reports
from marketing.store.models import coupons, offer_stores, offers, redemptions, sales

stores_t = sa.table("stores", sa.column("id"), sa.column("mall_id"), sa.column("name"), sa.column("timezone"))


def instants(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """Local days ``start``..``end`` (inclusive) in ``tz`` as UTC instants ``[since, until)``."""
    zone = ZoneInfo(tz)
    return (datetime.combine(start, time(0), zone).astimezone(ZoneInfo("UTC")),
            datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(ZoneInfo("UTC")))


def _in_force(since: datetime, until: datetime) -> Any:
    """The redemptions in force (the member figures): ``redeem`` rows in the range that no rollback names, ever."""
    undone = sa.select(redemptions.c.reverses_id).where(redemptions.c.reverses_id.is_not(None))
    return sa.and_(redemptions.c.kind == "redeem", redemptions.c.ts >= since, redemptions.c.ts < until,
                   redemptions.c.id.not_in(undone))


def _in_charge(member: Any, store: Any, ts: Any) -> Any:
    """The staff member bound to ``member`` in ``store`` at ``ts`` (a correlated scalar subquery; NULL: nobody)."""
    b = staff_bindings.alias("b")
    # correlate_except: the event's table (two levels up) is the outer query's, never a FROM of its own here
    latest = (sa.select(b.c.id).where(b.c.member_id == member, b.c.store_id == store, b.c.bound_at <= ts)
              .order_by(b.c.bound_at.desc(), b.c.id.desc()).limit(1).correlate_except(b).scalar_subquery())
    return (sa.select(staff_bindings.c.staff).where(staff_bindings.c.id == latest, staff_bindings.c.expires_at > ts)
            .correlate_except(staff_bindings).scalar_subquery())


def offer_rows(conn: Connection, store_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per offer issued by the store or redeemable in it: coupons issued from the store in the range, and the
    redemptions at the store booked in the range net of the rollbacks booked in it (:func:`reports.booked`), the
    rate, the discount cost and the redeemed baskets (the revenue the coupon came with)."""
    here = sa.select(offer_stores.c.offer_id).where(offer_stores.c.store_id == store_id)
    rows = conn.execute(sa.select(offers.c.id, offers.c.title, offers.c.kind, offers.c.store_id)
                        .where(sa.or_(offers.c.store_id == store_id, offers.c.id.in_(here)))
                        .order_by(offers.c.id)).all()
    figures = {f.offer_id: f for f in metrics.offer_figures(
        reports.issued_per_offer(conn, [store_id], since, until),
        reports.booked(conn, since, until, store_id=store_id))}
    out = []
    for r in rows:
        f = figures.get(r.id) or metrics.OfferFigures(r.id, 0, 0, 0)
        out.append({"offer_id": r.id, "title": r.title, "kind": r.kind, "issuing_store": r.store_id,
                    "issued": f.issued, "redeemed": f.redeemed, "rate": f.redemption_rate.value,
                    "discount_cents": f.discount_cents, "revenue_cents": f.basket_cents})
    return out


def funnel(conn: Connection, store_id: str, since: datetime, until: datetime) -> dict[str, int]:
    """Members (the linkable part only): given a coupon from the store, who redeemed one in the store, and who of
    those bought in the store (a POS sale linked to them) at or after a redemption, in the range."""
    given = conn.execute(sa.select(sa.func.count(sa.distinct(coupons.c.member_id))).where(
        coupons.c.store_id == store_id, coupons.c.member_id.is_not(None), coupons.c.issued_at >= since,
        coupons.c.issued_at < until)).scalar()
    red = (sa.select(redemptions.c.member_id, sa.func.min(redemptions.c.ts).label("first"))
           .where(_in_force(since, until), redemptions.c.store_id == store_id, redemptions.c.member_id.is_not(None))
           .group_by(redemptions.c.member_id).subquery())
    redeemed = conn.execute(sa.select(sa.func.count()).select_from(red)).scalar()
    bought = conn.execute(sa.select(sa.func.count(sa.distinct(red.c.member_id))).select_from(
        red.join(sales, sa.and_(sales.c.member_id == red.c.member_id, sales.c.store_id == store_id,
                                sales.c.kind == "sale", sales.c.ts >= red.c.first, sales.c.ts < until)))).scalar()
    return {"members_given": int(given or 0), "members_redeemed": int(redeemed or 0),
            "members_purchased": int(bought or 0)}


def staff_rows(conn: Connection, store_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per staff member of the store: members bound in the range, redemptions they made at the counter, the
    redemptions and the net sales attributed to them, and their flags. Best attributed sales first."""
    # redemptions made at the counter: booked, as the offer figures (a rollback against whoever redeemed)
    made = {k: v for k, v in metrics.staff_figures(reports.booked(conn, since, until, store_id=store_id)).items()
            if v != (0, 0)}
    credited_red = (sa.select(_in_charge(redemptions.c.member_id, redemptions.c.store_id, redemptions.c.ts)
                              .label("staff"), redemptions.c.basket_cents)
                    .where(_in_force(since, until), redemptions.c.store_id == store_id,
                           redemptions.c.member_id.is_not(None)).subquery())
    red_by = {r.staff: r for r in conn.execute(
        sa.select(credited_red.c.staff, sa.func.count().label("n"),
                  sa.func.sum(credited_red.c.basket_cents).label("basket"))
        .where(credited_red.c.staff.is_not(None)).group_by(credited_red.c.staff))}
    # sales: marketing.core.metrics.attributed_revenue (a refund follows its sale's staff member); the sales of
    # the range, and the bindings that may hold them
    sales_by = metrics.attributed_revenue(reports.sale_facts(conn, [store_id], since, until),
                                          attribution_rows(conn, [store_id], since, until))
    bound = dict(conn.execute(
        sa.select(staff_bindings.c.staff, sa.func.count(sa.distinct(staff_bindings.c.member_id)))
        .where(staff_bindings.c.store_id == store_id, staff_bindings.c.bound_at >= since,
               staff_bindings.c.bound_at < until).group_by(staff_bindings.c.staff)).tuples().all())
    flagged = dict(conn.execute(
        sa.select(staff_flags.c.staff, sa.func.count()).where(staff_flags.c.store_id == store_id,
                                                              staff_flags.c.at >= since, staff_flags.c.at < until)
        .group_by(staff_flags.c.staff)).tuples().all())
    out: list[dict[str, Any]] = []
    for name in set(made) | set(red_by) | set(sales_by) | set(bound) | set(flagged):
        m, r = made.get(name), red_by.get(name)
        out.append({"staff": name, "members_bound": int(bound.get(name, 0)),
                    "redemptions": m[0] if m else 0, "discount_cents": m[1] if m else 0,
                    "attributed_redemptions": int(r.n) if r else 0,
                    "attributed_basket_cents": int(r.basket or 0) if r else 0,
                    "attributed_sales_cents": int(sales_by.get(name) or 0), "flags": int(flagged.get(name, 0))})
    out.sort(key=lambda x: (-(int(x["attributed_sales_cents"]) + int(x["attributed_basket_cents"])), str(x["staff"])))
    return out


def settlement(conn: Connection, mall_id: str, since: datetime, until: datetime) -> dict[str, Any]:
    """The trade-area settlement of a mall's offers in the range (:func:`marketing.core.metrics.settlement` over
    :func:`reports.booked`): per (issuing store, redeeming store) the redemptions booked net of rollbacks booked,
    their discount and baskets, and per store what its own coupons cost and what it gave on others'."""
    return metrics.settlement(reports.booked(conn, since, until, mall_id=mall_id))
