"""A campaign's figures (an edge: SQL): who was eligible, in which arm, what happened to each send, and each
member's outcomes in the window after their eligibility — the inputs of :func:`marketing.core.lift.analyse`.

Per member, from the moment ``eligible_at`` for ``window_days`` days, in the campaign's stores (its store, or every
store of its mall):

- **visits**: Wi-Fi logins (``logins``) plus the sensor's visits of the member's registered devices
  (``member_registry`` → ``visits.device``, staff visits excluded); ``visited`` = at least one;
- **purchases and revenue**: POS sales linked to the member (``sales``), refunds subtracted;
- **redemptions**: redemptions of the coupons the campaign's sends carried (:func:`campaign_coupons`: issued for
  its sends, or for an ``expiring`` campaign the coupons it reminded of), rollbacks subtracted, and the discount
  they cost (a coupon of the same offer from elsewhere — the success page, the counter — is not the campaign's);
- **pre-period visits** (the 28 days before eligibility): the covariate CUPED adjusts by.

Each is one grouped statement joined to ``campaign_members`` (the window test in SQL: an interval on PostgreSQL,
``julianday`` on SQLite). The attributed (last-touch) figures are computed beside them: a treated member's sale or
redemption counts for the campaign when it falls in the window after a send of the campaign that reached them and
no other campaign's send reached them in between. They are what a report without a control would show; the lift
is what the campaign caused.

The portal's tables (``logins``, ``member_registry``) are named here as table clauses with the columns used:
marketing never imports the portal.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analytics.store import visits as sensor_visits
from marketing.core import lift
from marketing.store.campaigns import campaign_members, campaign_sends, campaigns, splash_messages
from marketing.store.models import redemptions, sales
from marketing.store.segments import LOGINS, REGISTRY

STORES = sa.table("stores", sa.column("id", sa.String), sa.column("mall_id", sa.String))
#: the days before eligibility whose visits are the CUPED covariate
PRE_DAYS = 28
#: the status marketing.execution marks a send the channel took with
SENT = ("sent",)


@dataclass(frozen=True)
class Figures:
    eligible: int
    treatment: int
    control: int
    #: campaign_sends rows by status, and the suppressed ones by reason
    by_status: dict[str, int]
    suppressed: dict[str, int]
    sent: int
    delivered: int
    redeemed: int
    discount_cents: int
    cost_cents: int
    lift: lift.LiftReport
    #: visits (logins + sensor visits) in each arm, and the members behind them
    visits_treatment: int
    visits_control: int
    attributed_buyers: int
    attributed_revenue_cents: int
    attributed_redemptions: int
    #: whether the estimates were adjusted by CUPED (the pre-period visits varied)
    cuped: bool


def scope_stores(conn: Connection, store_id: str | None, mall_id: str | None) -> list[str]:
    if store_id is not None:
        return [store_id]
    return list(conn.execute(sa.select(STORES.c.id).where(STORES.c.mall_id == mall_id)).scalars())


def _within(conn: Connection, ts: Any, start: Any, lo_days: float, hi_days: float) -> sa.ColumnElement[bool]:
    """``start + lo_days <= ts < start + hi_days`` for TS columns, on either database."""
    if conn.dialect.name == "postgresql":
        return sa.and_(ts >= start + sa.func.make_interval(0, 0, 0, 0, 0, 0, lo_days * 86400.0),
                       ts < start + sa.func.make_interval(0, 0, 0, 0, 0, 0, hi_days * 86400.0))
    return sa.and_(sa.func.julianday(ts) >= sa.func.julianday(start) + lo_days,
                   sa.func.julianday(ts) < sa.func.julianday(start) + hi_days)


def _epoch(conn: Connection, col: Any) -> sa.ColumnElement[float]:
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.extract("epoch", col), sa.Float)
    return (sa.func.julianday(col) - 2440587.5) * 86400.0


def _per_member(conn: Connection, q: sa.Select[Any]) -> dict[int, tuple[float, ...]]:
    return {int(r[0]): tuple(float(x or 0) for x in r[1:]) for r in conn.execute(q)}


def campaign_coupons(campaign_id: int, trigger: str) -> sa.Select[Any]:
    """The ids of the coupons a campaign's sends carried: those issued for its sends (``campaign_sends.coupon_id``,
    marketing.execution), or for an ``expiring`` campaign the coupons its reminders were about (the step)."""
    cs = campaign_sends
    if trigger == "expiring":  # the reminders that went out
        return sa.select(cs.c.step).where(cs.c.campaign_id == campaign_id, cs.c.status.in_(SENT))
    # every coupon the campaign issued, whatever became of its message (the coupon is on the member card)
    return sa.select(cs.c.coupon_id).where(cs.c.campaign_id == campaign_id, cs.c.coupon_id.is_not(None))


def outcomes(conn: Connection, campaign_id: int, stores: Sequence[str], window_days: int,
             trigger: str) -> dict[str, dict[int, tuple[float, ...]]]:
    """Per member of the campaign: logins, sensor visits, pre-period logins and visits, sales and net revenue,
    net redemptions and discount of the coupons the campaign's sends carried (:func:`campaign_coupons`) (each a
    dict member id → values; members without any are absent)."""
    cm = campaign_members
    mine = cm.c.campaign_id == campaign_id
    lg, reg, v, s, r = LOGINS, REGISTRY, sensor_visits, sales, redemptions
    out: dict[str, dict[int, tuple[float, ...]]] = {}
    for name, lo, hi in (("logins", 0.0, float(window_days)), ("pre_logins", -float(PRE_DAYS), 0.0)):
        out[name] = _per_member(conn, sa.select(cm.c.member_id, sa.func.count()).select_from(
            cm.join(lg, lg.c.member_id == cm.c.member_id)).where(
            mine, lg.c.store_id.in_(stores), _within(conn, lg.c.ts, cm.c.eligible_at, lo, hi)).group_by(
            cm.c.member_id))
        start = _epoch(conn, cm.c.eligible_at)
        out["visits" if name == "logins" else "pre_visits"] = _per_member(
            conn, sa.select(cm.c.member_id, sa.func.count()).select_from(
                cm.join(reg, reg.c.member_id == cm.c.member_id).join(v, v.c.device == reg.c.registry_id)).where(
                mine, v.c.store.in_(stores), v.c.staff.is_(False), v.c.start >= start + lo * 86400.0,
                v.c.start < start + hi * 86400.0).group_by(cm.c.member_id))
    signed = sa.case((s.c.kind == "sale", s.c.amount_cents), else_=-s.c.amount_cents)
    out["sales"] = _per_member(conn, sa.select(
        cm.c.member_id, sa.func.sum(sa.case((s.c.kind == "sale", 1), else_=0)), sa.func.sum(signed)).select_from(
        cm.join(s, s.c.member_id == cm.c.member_id)).where(
        mine, s.c.store_id.in_(stores), _within(conn, s.c.ts, cm.c.eligible_at, 0.0, float(window_days))).group_by(
        cm.c.member_id))
    sign = sa.case((r.c.kind == "redeem", 1), else_=-1)
    out["redemptions"] = _per_member(conn, sa.select(
        cm.c.member_id, sa.func.sum(sign), sa.func.sum(sign * r.c.discount_cents)).select_from(
        cm.join(r, r.c.member_id == cm.c.member_id)).where(
        mine, r.c.coupon_id.in_(campaign_coupons(campaign_id, trigger)),
        _within(conn, r.c.ts, cm.c.eligible_at, 0.0, float(window_days))).group_by(cm.c.member_id))
    return out


def attributed(conn: Connection, campaign_id: int, stores: Sequence[str], window_days: int,
               trigger: str) -> tuple[int, int, int]:
    """Last-touch: (buyers, net revenue in cents, net redemptions) of treated members after a send of this
    campaign reached them, within the window and before any later send of another campaign."""
    mine = campaign_sends.alias("mine")
    other = campaign_sends.alias("other")
    s, r = sales, redemptions

    def last_touch(ts: Any, member: Any) -> list[sa.ColumnElement[bool]]:
        later = sa.select(other.c.id).where(
            other.c.member_id == member, other.c.campaign_id != campaign_id, other.c.status.in_(SENT),
            other.c.ts > mine.c.ts, other.c.ts <= ts).correlate_except(other)  # the sale's row is two levels up
        return [mine.c.campaign_id == campaign_id, mine.c.status.in_(SENT), mine.c.member_id == member,
                _within(conn, ts, mine.c.ts, 0.0, float(window_days)), ~sa.exists(later)]

    signed = sa.case((s.c.kind == "sale", s.c.amount_cents), else_=-s.c.amount_cents)
    touched_sales = sa.select(s.c.id, s.c.member_id, s.c.kind, signed.label("net")).where(
        s.c.store_id.in_(stores),
        sa.exists(sa.select(mine.c.id).where(*last_touch(s.c.ts, s.c.member_id)).correlate_except(mine))
    ).subquery()
    buyers, revenue = conn.execute(sa.select(
        sa.func.count(sa.distinct(sa.case((touched_sales.c.kind == "sale", touched_sales.c.member_id)))),
        sa.func.coalesce(sa.func.sum(touched_sales.c.net), 0))).one()
    sign = sa.case((r.c.kind == "redeem", 1), else_=-1)
    redeemed = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(sign), 0)).where(
        r.c.coupon_id.in_(campaign_coupons(campaign_id, trigger)),
        sa.exists(sa.select(mine.c.id).where(*last_touch(r.c.ts, r.c.member_id)).correlate_except(mine)))
    ).scalar_one()
    return int(buyers or 0), int(revenue or 0), int(redeemed or 0)


def figures(conn: Connection, campaign_id: int, message_cost_cents: int) -> Figures | None:
    """Everything the report shows of one campaign (None: no such campaign)."""
    c = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).first()
    if c is None:
        return None
    stores = scope_stores(conn, c.store_id, c.mall_id)
    cm = campaign_members
    arms = {int(m): str(a) for m, a in conn.execute(
        sa.select(cm.c.member_id, cm.c.arm).where(cm.c.campaign_id == campaign_id).order_by(cm.c.member_id))}
    cs = campaign_sends
    by_status: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    for status, reason, n in conn.execute(sa.select(cs.c.status, cs.c.reason, sa.func.count()).where(
            cs.c.campaign_id == campaign_id).group_by(cs.c.status, cs.c.reason)):
        by_status[status] = by_status.get(status, 0) + int(n)
        if status == "suppressed":
            suppressed[str(reason)] = suppressed.get(str(reason), 0) + int(n)
    o = outcomes(conn, campaign_id, stores, c.window_days, c.trigger)
    arrays: dict[str, dict[str, list[float]]] = {a: {"visited": [], "bought": [], "revenue": [], "pre": []}
                                                 for a in ("treatment", "control")}
    visit_counts = {"treatment": 0, "control": 0}
    for member, arm in arms.items():
        visits = o["logins"].get(member, (0.0,))[0] + o["visits"].get(member, (0.0,))[0]
        pre = o["pre_logins"].get(member, (0.0,))[0] + o["pre_visits"].get(member, (0.0,))[0]
        bought, revenue = o["sales"].get(member, (0.0, 0.0))
        a = arrays[arm]
        a["visited"].append(1.0 if visits > 0 else 0.0)
        a["bought"].append(1.0 if bought > 0 else 0.0)
        a["revenue"].append(revenue)
        a["pre"].append(pre)
        visit_counts[arm] += int(visits)
    redeemed = int(sum(v[0] for v in o["redemptions"].values()))
    discount = int(sum(v[1] for v in o["redemptions"].values()))
    sent = sum(by_status.get(s, 0) for s in SENT)
    cost = discount + sent * message_cost_cents
    t, k = arrays["treatment"], arrays["control"]
    # CUPED only when the covariate varies (a flat pre-period explains nothing)
    use_pre = len(set(t["pre"] + k["pre"])) > 1
    report = lift.analyse(
        lift.Outcomes.of(t["visited"], t["bought"], t["revenue"], t["pre"] if use_pre else None),
        lift.Outcomes.of(k["visited"], k["bought"], k["revenue"], k["pre"] if use_pre else None), float(cost))
    a_buyers, a_revenue, a_redeemed = attributed(conn, campaign_id, stores, c.window_days, c.trigger)
    return Figures(eligible=len(arms), treatment=len(t["visited"]), control=len(k["visited"]), by_status=by_status,
                   suppressed=suppressed, sent=sent, delivered=delivered(conn, campaign_id), redeemed=redeemed,
                   discount_cents=discount, cost_cents=cost, lift=report, visits_treatment=visit_counts["treatment"],
                   visits_control=visit_counts["control"], attributed_buyers=a_buyers,
                   attributed_revenue_cents=a_revenue, attributed_redemptions=a_redeemed, cuped=use_pre)


def delivered(conn: Connection, campaign_id: int) -> int:
    """The sends a receiver confirmed, as marketing.execution records them: a signed webhook its receiver answered
    with 2xx (``sent``), a success-page message the member was shown (``splash_messages.shown_at``). SMS and WeChat
    sends are ``sent`` once the provider took them (its serial number or msgid in ``provider_ref``); keliu takes no
    delivery receipts from them, so they are not counted as delivered."""
    cs, sp = campaign_sends, splash_messages
    hooks = conn.execute(sa.select(sa.func.count()).select_from(cs).where(
        cs.c.campaign_id == campaign_id, cs.c.channel == "webhook", cs.c.status.in_(SENT))).scalar_one()
    shown = conn.execute(sa.select(sa.func.count()).select_from(sp).where(
        sp.c.campaign_id == campaign_id, sp.c.shown_at.is_not(None))).scalar_one()
    return int(hooks) + int(shown)


def control_visit_rate(f: Figures) -> float | None:
    """The control's visit rate: the baseline a sample-size question starts from."""
    return f.lift.visit_rate.mean_control

