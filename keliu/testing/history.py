"""Generated past days of a demo's stores, as the analytics rollups the pipeline would have written (pure).

The demo (:mod:`keliu.demo`) starts with two weeks of history so that every "same weekday last week" comparison has
data. Computing two weeks of a mall's probe requests through the sensor and the pipeline would take minutes; the
figures are drawn here instead, day by day and hour by hour, from a store's :class:`Profile` (busier at weekends
and in the late afternoon, a log-normal dwell around the store's median), and written straight into the rollup
tables (``analytics.store.rollups``: a ``1d`` row at the store-local midnight and 24 ``1h`` rows; ``mall_days`` and
``mall_transitions`` for the malls). The same seed always gives the same history. Nothing here claims to be
measured: it is the demo's stand-in for the days before it started.

:func:`campaign_outcomes` draws the Wi-Fi logins and purchases of the demo campaign's members in its window (the
members its message reached come back and buy more often: :class:`CampaignEffect`); :func:`keliu.demo.load_campaign`
writes them.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from analytics.metrics import DWELL_EDGES_MS, DWELL_FIELDS, LOYALTY_LABELS

#: the share of Wi-Fi logins that opt in to membership (the marketing consent); the demo's live logins use it too
MEMBER_RATE = 0.35


@dataclass(frozen=True)
class Profile:
    """A store's typical weekday: opening hours (store-local), shoppers who come in and who walk by, dwell."""

    store: str
    mall: str
    timezone: str = "Asia/Shanghai"
    open_h: int = 10
    close_h: int = 22
    visitors: int = 240
    passersby: int = 1200
    median_dwell_s: float = 900.0
    staff: int = 4
    #: share of visitors who log in to the Wi-Fi, and of those who opt in to membership
    login_rate: float = 0.12
    member_rate: float = MEMBER_RATE
    #: whether a visitor can be known again on a later day: not under the sensor's ``strict`` privacy (a device id
    #: lives one day, docs/PRIVACY.md), where every visitor is new and the loyalty buckets hold first-timers only
    repeats: bool = True


def _weights(p: Profile) -> list[float]:
    """Relative traffic of each hour of the day: nothing while closed, a peak at 65 % of the opening hours."""
    span = p.close_h - p.open_h
    out = []
    for h in range(24):
        if not p.open_h <= h < p.close_h:
            out.append(0.0)
            continue
        x = (h + 0.5 - p.open_h) / span
        out.append(0.4 + 0.6 * (1 - abs(x - 0.65) / 0.65))
    return out


def _split(rng: random.Random, total: int, weights: Sequence[float]) -> list[int]:
    """``total`` spread over the bins in proportion to ``weights`` (largest remainders, then a little noise)."""
    s = sum(weights)
    if not s or total <= 0:
        return [0] * len(weights)
    raw = [total * w / s * rng.uniform(0.85, 1.15) for w in weights]
    scale = total / sum(raw)
    return [round(r * scale) for r in raw]


def _dwell_buckets(rng: random.Random, visits: int, median_s: float) -> list[int]:
    out = [0] * len(DWELL_FIELDS)
    for _ in range(visits):
        dwell_ms = min(5 * 3600.0, max(120.0, rng.lognormvariate(math.log(median_s), 0.7))) * 1000
        i = sum(1 for edge in DWELL_EDGES_MS if dwell_ms >= edge)
        out[min(i, len(out) - 1)] += 1
    return out


def _row(p: Profile, period: str, start: int, day: date, v: int, ps: int, rng: random.Random,
         median_s: float, staff: int, now: float) -> dict[str, Any]:
    visits = v + round(v * rng.uniform(0.0, 0.15))
    share_new = rng.uniform(0.6, 0.8)  # drawn either way: the rest of the history is the same with or without
    new = round(v * share_new) if p.repeats else v
    logins = round(v * p.login_rate * rng.uniform(0.7, 1.3))
    repeat = v - new
    daily = round(repeat * 0.1)
    weekly = round(repeat * 0.4)
    monthly = round(repeat * 0.3)
    loyalty = dict(zip(LOYALTY_LABELS, (new, daily, weekly, monthly, repeat - daily - weekly - monthly)))
    row: dict[str, Any] = {
        "store": p.store, "period": period, "start": start, "mall": p.mall, "day": day, "visitors": v,
        "passersby": ps, "visits": visits, "new_visitors": new, "repeat_visitors": repeat, "staff_excluded": staff,
        "wifi_logins": logins, "new_members": round(logins * p.member_rate * rng.uniform(0.6, 1.4)),
        "capture_rate": v / (v + ps) if v + ps else 0.0, "median_dwell_s": median_s if visits else 0.0,
        "updated_at": now}
    row.update(zip(DWELL_FIELDS, _dwell_buckets(rng, visits, median_s)))
    row.update(("loyal_" + k, n) for k, n in loyalty.items())
    return row


def store_days(p: Profile, days: Sequence[date], seed: int, now: float) -> list[dict[str, Any]]:
    """The ``1d`` and ``1h`` rollup rows of the store's ``days``."""
    tz = ZoneInfo(p.timezone)
    weights = _weights(p)
    out: list[dict[str, Any]] = []
    for day in days:
        rng = random.Random(f"keliu-history:{seed}:{p.store}:{day.isoformat()}")
        busy = (1.35 if day.weekday() >= 5 else 1.0) * rng.uniform(0.85, 1.15)
        hv = _split(rng, round(p.visitors * busy), weights)
        hp = _split(rng, round(p.passersby * busy), weights)
        median = p.median_dwell_s * rng.uniform(0.85, 1.15)
        midnight = int(datetime.combine(day, time(), tz).timestamp())
        first_open = next((h for h, w in enumerate(weights) if w), 0)
        hours = [_row(p, "1h", midnight + 3600 * h, day, hv[h], hp[h], rng,
                      median * rng.uniform(0.8, 1.2) if hv[h] else 0.0, p.staff if h == first_open else 0, now)
                 for h in range(24)]
        total = _row(p, "1d", midnight, day, sum(hv), sum(hp), rng, median, p.staff, now)
        # the day's counts are its hours' counts (as the pipeline's are)
        for key in ("visits", "new_visitors", "repeat_visitors", "wifi_logins", "new_members", *DWELL_FIELDS,
                    *("loyal_" + k for k in LOYALTY_LABELS)):
            total[key] = sum(r[key] for r in hours)
        out += [total, *hours]
    return out


def mall_days(mall: str, rows: Sequence[dict[str, Any]], seed: int, now: float) -> tuple[list[dict[str, Any]],
                                                                                             list[dict[str, Any]]]:
    """A mall's ``mall_days`` (a shopper who entered several stores counted once) and ``mall_transitions`` rows
    from its stores' ``1d`` rows."""
    days: dict[date, list[dict[str, Any]]] = {}
    for r in rows:
        if r["period"] == "1d" and r["mall"] == mall:
            days.setdefault(r["day"], []).append(r)
    out, trans = [], []
    for day, stores in sorted(days.items()):
        rng = random.Random(f"keliu-history-mall:{seed}:{mall}:{day.isoformat()}")
        v = round(sum(s["visitors"] for s in stores) * rng.uniform(0.8, 0.9))
        ps = round(sum(s["passersby"] for s in stores) * rng.uniform(0.6, 0.75))
        out.append({"mall": mall, "day": day, "visitors": v, "passersby": ps,
                    "staff_excluded": sum(s["staff_excluded"] for s in stores),
                    "capture_rate": v / (v + ps) if v + ps else 0.0, "updated_at": now})
        for a in stores:
            for b in stores:
                if a is not b:
                    n = round(min(a["visitors"], b["visitors"]) * rng.uniform(0.01, 0.05))
                    if n:
                        trans.append({"mall": mall, "day": day, "src": a["store"], "dst": b["store"], "count": n})
    return out, trans


@dataclass(frozen=True)
class CampaignEffect:
    """What the demo's campaign does to the members its message reached (an assumption of the generator, not a
    finding): everyone else — the held-out, and the treated it did not reach — comes back and buys at the base
    rates, the reached at the rates lifted by ``visit_lift`` and ``purchase_lift``."""

    visit_rate: float = 0.22
    visit_lift: float = 0.8
    purchase_rate: float = 0.10
    purchase_lift: float = 0.8
    median_ticket_cents: int = 9800
    #: the share of treated buyers whose basket allows it who use the campaign's coupon
    redeem_share: float = 0.6


@dataclass(frozen=True)
class MemberOutcome:
    member_id: int
    logins: tuple[datetime, ...]
    #: (when, amount in cents, whether the campaign's coupon was used)
    sales: tuple[tuple[datetime, int, bool], ...]


def campaign_outcomes(arms: dict[int, str], reached: frozenset[int], eligible_at: datetime, window_days: int,
                      seed: int,
                      effect: CampaignEffect = CampaignEffect(), *, open_h: int = 10, close_h: int = 22,
                      timezone: str = "Asia/Shanghai", min_spend_cents: int = 10000) -> list[MemberOutcome]:
    """Each enrolled member's Wi-Fi logins and purchases in the window after ``eligible_at`` (pure, seeded): a
    member comes back with their visit rate (one or two logins in opening hours; lifted if the campaign's message
    ``reached`` them), and a visitor buys with the probability that makes their purchase rate; a reached buyer may
    use the campaign's coupon. The same seed gives the same outcomes."""
    tz = ZoneInfo(timezone)
    out: list[MemberOutcome] = []
    for member, arm in sorted(arms.items()):
        rng = random.Random(f"keliu-campaign:{seed}:{member}")
        treated = arm == "treatment" and member in reached
        p_visit = min(0.95, effect.visit_rate * (1 + effect.visit_lift if treated else 1))
        p_buy = min(0.95, effect.purchase_rate * (1 + effect.purchase_lift if treated else 1)) / p_visit
        if rng.random() >= p_visit:
            out.append(MemberOutcome(member, (), ()))
            continue
        logins: list[datetime] = []
        for _ in range(1 + (rng.random() < 0.25)):
            day = eligible_at.astimezone(tz).date() + timedelta(days=rng.randrange(1, window_days))
            minute = rng.randrange(open_h * 60, close_h * 60 - 30)
            logins.append(datetime.combine(day, time(minute // 60, minute % 60), tz).astimezone(eligible_at.tzinfo))
        logins.sort()
        sales: list[tuple[datetime, int, bool]] = []
        if rng.random() < p_buy:
            cents = max(1000, round(effect.median_ticket_cents * math.exp(rng.gauss(0.0, 0.5)) / 100) * 100)
            coupon = treated and cents >= min_spend_cents and rng.random() < effect.redeem_share
            sales.append((logins[0] + timedelta(minutes=20), cents, coupon))
        out.append(MemberOutcome(member, tuple(logins), tuple(sales)))
    return out
