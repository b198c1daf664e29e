"""A store-day's metrics (capture rate, dwell, loyalty, staff, funnel) and a mall-day's shoppers and transitions."""
from __future__ import annotations

import numpy as np
import pytest

from analytics.metrics import DWELL_LABELS, History, loyalty_of, mall_day, store_day
from analytics.visits import Rules, device_codes, summarize
from tests.analytics.builders import DAY_START_MS, arrays, dev, tsighting, tvisit

R = Rules()
H = 3600


def day_of(batch, rules=R, history=None, logins=None, members=None):
    return store_day(summarize(*arrays(batch), rules, DAY_START_MS), rules, DAY_START_MS, history, logins, members)


def daily(sd):
    (r,) = sd.rollup("1d")
    return r


def passer(name, t):
    return [tsighting(t, name, -85), tsighting(t + 30, name, -80)]


def test_visitors_passersby_capture_rate():
    batch = tvisit("v1", 11 * H, 10) + tvisit("v2", 15 * H, 30) + passer("p1", 12 * H) + passer("p2", 12 * H)
    batch += passer("p3", 13 * H) + [tsighting(14 * H, "far", -95)]  # below -90: not even heard
    r = daily(day_of(batch))
    assert (r.visitors, r.passersby, r.visits) == (2, 3, 2)
    assert r.capture_rate == pytest.approx(0.4)
    assert r.median_dwell_s == 1260.0  # dwell 11 and 31 min: observed 10 and 30, a probe a minute (edge correction)


def test_nobody_heard_gives_zero_rate():
    r = daily(day_of([tsighting(11 * H, "far", -95)]))
    assert (r.visitors, r.passersby, r.capture_rate, r.median_dwell_s) == (0, 0, 0.0, 0.0)


def test_a_visitor_counts_once_a_day_but_every_visit_counts():
    batch = tvisit("v", 11 * H, 10) + tvisit("v", 16 * H, 60)
    sd = day_of(batch)
    r = daily(sd)
    assert (r.visitors, r.visits) == (1, 2)
    assert dict(zip(DWELL_LABELS, r.dwell)) == {"<5m": 0, "5-20m": 1, "20-60m": 0, "1-6h": 1, ">6h": 0}
    hourly = sd.rollup("1h")
    assert [h.visitors for h in hourly][11] == 1 and sum(h.visitors for h in hourly) == 1
    assert [h.visits for h in hourly][16] == 1


def test_periods_add_up_to_the_day():
    batch = tvisit("a", 10 * H + 100, 7) + tvisit("b", 10 * H + 400, 40) + passer("p", 21 * H + 59 * 60)
    sd = day_of(batch)
    for period, n in (("5m", 288), ("1h", 24)):
        rows = sd.rollup(period)
        assert len(rows) == n
        assert sum(r.visitors for r in rows) == daily(sd).visitors
        assert sum(r.passersby for r in rows) == daily(sd).passersby
        assert rows[1].start - rows[0].start == (300 if period == "5m" else 3600)
    assert sd.rollup("5m")[120].visitors == 1  # 10:00-10:05 local
    assert sd.rollup("1h")[21].passersby == 1


@pytest.mark.parametrize("minutes,label", [(4, "<5m"), (5, "5-20m"), (19.5, "5-20m"), (20, "20-60m"),
                                           (60, "1-6h"), (360, ">6h")])
def test_dwell_buckets_lower_bound_inclusive(minutes, label):
    # a probe every 30 s: the dwell is the observed span plus 30 s (the edge correction of a regular cadence)
    sd = day_of(tvisit("a", 10 * H, minutes - 0.5, every=30), Rules(min_dwell_s=60))
    assert sd.visits.dwell_ms.tolist() == [minutes * 60_000]
    assert dict(zip(DWELL_LABELS, daily(sd).dwell))[label] == 1


def test_staff_auto_same_day_fixed_device():
    printer = [tsighting(10 * H + i * 600, "printer", -50) for i in range(72)]  # 10:00-22:00
    sd = day_of(printer + tvisit("v", 12 * H, 10))
    r = daily(sd)
    assert (r.visitors, r.passersby, r.staff_excluded) == (1, 0, 1)
    assert sd.devices.auto_staff.sum() == 1


def test_staff_needs_most_of_the_opening_hours():
    shift = tvisit("half", 10 * H, 6 * 60, every=600)  # 6 of 12 opening hours < 60 %
    r = daily(day_of(shift))
    assert (r.visitors, r.staff_excluded) == (1, 0)
    shift = tvisit("most", 10 * H, 8 * 60, every=600)  # 8 (+1 partial) of 12 hours
    r = daily(day_of(shift))
    assert (r.visitors, r.staff_excluded) == (0, 1)


def test_staff_manual_list():
    rules = Rules(staff_devices=(dev("boss"),))
    r = daily(day_of(tvisit("boss", 12 * H, 30) + tvisit("v", 12 * H, 30), rules))
    assert (r.visitors, r.staff_excluded) == (1, 1)


def test_staff_from_history_on_most_recent_days():
    code = device_codes([dev("clerk")])
    hist = History(staff_device=np.repeat(code, 4), staff_age=np.array([1, 2, 3, 5]))
    r = daily(day_of(tvisit("clerk", 12 * H, 60), history=hist))
    assert (r.visitors, r.staff_excluded) == (0, 1)
    hist = History(staff_device=np.repeat(code, 3), staff_age=np.array([1, 2, 3]))
    assert daily(day_of(tvisit("clerk", 12 * H, 60), history=hist)).visitors == 1


def _hist(**ages):
    devs, a = [], []
    for name, days in ages.items():
        devs += [dev(name)] * len(days)
        a += days
    return History(visit_device=device_codes(devs), visit_age=np.array(a, dtype=np.int64))


def test_loyalty_buckets():
    hist = _hist(d=[1, 2, 3, 4, 5], w=[3], w2=[1, 2], m=[20], o=[45], gone=[120])
    names = ["new", "d", "w", "w2", "m", "o", "gone"]
    got = loyalty_of(device_codes([dev(n) for n in names]), hist, R).tolist()
    assert got == [0, 1, 2, 2, 3, 4, 0]
    batch = [s for n in names for s in tvisit(n, 12 * H, 10)]
    r = daily(day_of(batch, history=hist))
    assert r.loyalty == (2, 1, 2, 1, 1)
    assert (r.new_visitors, r.repeat_visitors) == (2, 5)


def test_funnel_counts_logins_and_members_per_period():
    logins = np.array([DAY_START_MS + 11 * H * 1000, DAY_START_MS + 11 * H * 1000 + 5, DAY_START_MS + 15 * H * 1000])
    members = np.array([DAY_START_MS + 15 * H * 1000 + 10])
    sd = day_of(tvisit("v", 11 * H, 10), logins=logins, members=members)
    assert (daily(sd).wifi_logins, daily(sd).new_members) == (3, 1)
    hourly = sd.rollup("1h")
    assert (hourly[11].wifi_logins, hourly[15].wifi_logins, hourly[15].new_members) == (2, 1, 1)


def test_mall_counts_a_shopper_once_and_their_transitions():
    a, b, c, staff, p = device_codes([dev(x) for x in ("a", "b", "c", "staff", "p")])
    store = np.array([0, 1, 0, 2, 1, 0, 1])
    device = np.array([a, a, a, b, b, c, staff], dtype=np.uint64)
    start = np.array([1, 2, 3, 1, 2, 1, 1], dtype=np.int64)
    md = mall_day(store, device, start, np.array([a, b, c, staff, p], dtype=np.uint64),
                  np.array([staff], dtype=np.uint64))
    assert (md.visitors, md.passersby, md.staff_excluded) == (3, 1, 1)
    assert md.transitions == {(0, 1): 1, (1, 0): 1, (2, 1): 1}
    assert md.capture_rate == pytest.approx(0.75)
