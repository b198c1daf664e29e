"""Connected shoppers (pure): the AP's own stations → visits with the same rules as the probes' (``min_dwell_s``,
``visit_gap_s``), exact dwell (no edge correction: the station list is polled), staff left out, and the report's
``connected`` block (basis ``connected_stations``; no station at all is None, never 0); the record the pipeline
stores of a day gives the same day back."""
from __future__ import annotations

import random

import numpy as np
import pytest

from analytics.metrics import (
    CONNECTED_BASIS,
    DWELL_LABELS,
    ConnectedDay,
    ConnectedRecord,
    connected_day,
    connected_figures,
    connected_hours,
    connected_record,
    mall_connected_day,
    recorded_day,
)
from analytics.visits import Rules, station_state, station_visits, summarize, visits
from tests.analytics.builders import DAY_START_MS, arrays, dev, tstation

H = 3600
RULES = Rules()  # min_dwell_s 300, visit_gap_s 900, open 10-22, staff_fraction 0.6


def day(batch: list) -> tuple:
    ts, device, _rssi = arrays(batch)
    return ts, device


def test_a_station_polled_for_30_minutes_is_one_visit_of_exactly_30_minutes() -> None:
    ts, device = day(tstation("w", 11 * H, 30))
    v = station_visits(station_state(ts, device, RULES, DAY_START_MS), RULES)
    assert len(v) == 1 and v.dwell_ms.tolist() == [1_800_000] and v.edge_ms.tolist() == [0]
    # the probes' edge correction would add one poll interval (10 s) here: not applied to stations
    probe = visits(summarize(ts, device, np.full(len(ts), -50, dtype=np.int16), RULES, DAY_START_MS), RULES)
    assert probe.dwell_ms.tolist() == [1_810_000]


def test_no_signal_and_weak_signal_still_count_association_is_presence() -> None:
    for rssi in (None, -95):
        ts, device = day(tstation("w", 11 * H, 20, rssi=rssi))
        out = connected_day(ts, device, RULES, DAY_START_MS)
        assert (out.visitors, out.dwell_ms.tolist()) == (1, [1_200_000])


def test_gap_and_minimum_dwell_are_the_stores_rules() -> None:
    # away 10 min (within the 15 min gap): one visit; away 20 min: two visits of one visitor
    joined = tstation("j", 11 * H, 10) + tstation("j", 11 * H + 20 * 60, 10)
    split = tstation("s", 14 * H, 10) + tstation("s", 14 * H + 30 * 60, 10)
    short = tstation("x", 16 * H, 4)  # 4 min < min_dwell_s: connected, but no visit
    ts, device = day(joined + split + short)
    v = station_visits(station_state(ts, device, RULES, DAY_START_MS), RULES)
    got = sorted(zip((int(d) for d in v.device), v.dwell_ms.tolist()))
    j, s = int(dev("j"), 16), int(dev("s"), 16)  # the sensor's 16-hex-digit ids are their own codes
    assert got == sorted([(j, 1_800_000), (s, 600_000), (s, 600_000)])
    out = connected_day(ts, device, RULES, DAY_START_MS)
    assert out.visitors == 2 and sorted(out.dwell_ms.tolist()) == [600_000, 600_000, 1_800_000]
    # a longer gap rule joins s's two parts; a shorter minimum makes x a visitor
    wide = Rules(visit_gap_s=1800, min_dwell_s=120)
    out = connected_day(ts, device, wide, DAY_START_MS)
    assert out.visitors == 3 and sorted(out.dwell_ms.tolist()) == [240_000, 1_800_000, 2_400_000]


def test_any_order_gives_the_same_day() -> None:
    batch = tstation("a", 11 * H, 30) + tstation("b", 12 * H, 50) + tstation("a", 15 * H, 7)
    ts, device = day(batch)
    order = np.array(random.Random(3).sample(range(len(ts)), len(ts)))
    one, two = (connected_day(t, d, RULES, DAY_START_MS) for t, d in ((ts, device), (ts[order], device[order])))
    assert one.visitors == two.visitors == 2
    assert sorted(one.dwell_ms.tolist()) == sorted(two.dwell_ms.tolist()) == [420_000, 1_800_000, 3_000_000]


def test_staff_stations_are_left_out() -> None:
    # on the Wi-Fi from 10:00 to 18:00 (8 of 12 opening hours ≥ 60 %): staff; a shopper for 30 min
    batch = tstation("clerk", 10 * H, 8 * 60, every=60) + tstation("shopper", 12 * H, 30)
    ts, device = day(batch)
    out = connected_day(ts, device, RULES, DAY_START_MS)
    assert (out.visitors, out.dwell_ms.tolist(), out.staff_excluded) == (1, [1_800_000], 1)
    manual = Rules(staff_devices=(dev("shopper"),))
    out = connected_day(ts, device, manual, DAY_START_MS)
    assert (out.visitors, out.staff_excluded) == (0, 2)


def test_the_block_median_and_buckets_over_the_days() -> None:
    d1 = connected_day(*day(tstation("a", 11 * H, 3) + tstation("b", 11 * H, 10) + tstation("c", 11 * H, 30)),
                       RULES, DAY_START_MS)
    d2 = connected_day(*day(tstation("a", 11 * H, 90) + tstation("b", 13 * H, 2)), RULES, DAY_START_MS)
    one = connected_figures([d1])
    assert one == {"basis": CONNECTED_BASIS, "visitors": 2, "visits": 2, "median_dwell_s": 1200.0,
                   "dwell_buckets": {"<5m": 0, "5-20m": 1, "20-60m": 1, "1-6h": 0, ">6h": 0}, "staff_excluded": 0,
                   "calibration": None, "coverage": None, "last_poll": None}
    both = connected_figures([d1, d2])
    assert (both["visitors"], both["visits"], both["median_dwell_s"]) == (3, 3, 1800.0)
    assert both["dwell_buckets"] == {"<5m": 0, "5-20m": 1, "20-60m": 1, "1-6h": 1, ">6h": 0}
    # stations seen, nobody stayed: 0 visitors and no median; no station at all: no data (None, never 0)
    brief = connected_figures([connected_day(*day(tstation("z", 11 * H, 2)), RULES, DAY_START_MS)])
    assert (brief["visitors"], brief["visits"], brief["median_dwell_s"]) == (0, 0, None)
    assert connected_figures([]) == {"basis": CONNECTED_BASIS, "visitors": None, "visits": None,
                                     "median_dwell_s": None, "dwell_buckets": {k: None for k in DWELL_LABELS},
                                     "staff_excluded": None, "calibration": None, "coverage": None,
                                     "last_poll": None}



def test_connected_visitors_present_per_hour() -> None:
    m = 60
    batch = (tstation("a", 11 * H + 10 * m, 30)  # 11:10-11:40: hour 11
             + tstation("b", 11 * H + 50 * m, 75)  # 11:50-13:05: hours 11, 12 and 13
             + tstation("a", 13 * H + 30 * m, 20)  # a's second visit, 13:30-13:50: hour 13 (a once in it)
             + tstation("c", 14 * H + 40 * m, 20)  # 14:40-15:00, its last poll on the hour: hours 14 and 15
             + tstation("d", 16 * H, 3)  # 3 min: no visit, in no hour
             + tstation("e", 23 * H + 50 * m, 10))  # until midnight: hour 23
    out = connected_day(*day(batch), RULES, DAY_START_MS)
    want = [0] * 24
    for h, n in {11: 2, 12: 1, 13: 2, 14: 1, 15: 1, 23: 1}.items():
        want[h] = n
    assert connected_hours(out, DAY_START_MS) == want
    # staff (the manual list) is in no hour, as in the day's visitors
    manual = Rules(staff_devices=frozenset({dev("b")}))
    staffed = connected_hours(connected_day(*day(batch), manual, DAY_START_MS), DAY_START_MS)
    assert staffed == [n - (1 if h in (11, 12, 13) else 0) for h, n in enumerate(want)]
    # stations, but no visit: 0 in every hour
    assert connected_hours(connected_day(*day(tstation("z", 9 * H, 2)), RULES, DAY_START_MS), DAY_START_MS) == [0] * 24


def test_a_station_at_two_stores_of_a_mall_is_one_connected_visitor() -> None:
    shift = tstation("s", 10 * H, 12 * 60)  # an assistant on a full shift at store one: staff there
    one = connected_day(*day(tstation("a", 11 * H, 30) + tstation("b", 12 * H, 20) + shift), RULES, DAY_START_MS)
    two = connected_day(*day(tstation("a", 12 * H, 15) + tstation("c", 14 * H, 45) + tstation("s", 13 * H, 20)),
                        RULES, DAY_START_MS)
    assert (one.visitors, one.staff_excluded, two.visitors, two.staff_excluded) == (2, 1, 3, 0)
    mall = mall_connected_day([one, two])
    # a once; s is staff at one store, so at the mall (its break at store two too); every other visit stays
    assert (mall.visitors, len(mall.dwell_ms), mall.staff_excluded) == (3, 4, 1)
    assert sorted(mall.dwell_ms.tolist()) == [900_000, 1_200_000, 1_800_000, 2_700_000]
    assert mall_connected_day([one]).visitors == one.visitors
    assert connected_hours(mall, DAY_START_MS)[11:15] == [1, 2, 0, 1]  # a at both stores in hour 12: once
    block = connected_figures([mall, mall_connected_day([two])])  # a range's mall-days: visitors summed per day
    assert (block["visitors"], block["visits"], block["staff_excluded"]) == (3 + 3, 4 + 3, 1 + 0)


def random_mall(rng: random.Random, first_h: int, shortest_min: int) -> list[list]:
    """Three stores' station polls: 12 phones, each connected at one to three of them, from a random hour between
    ``first_h`` and 20 for ``shortest_min`` to 90 minutes."""
    stores: list[list] = [[] for _ in range(3)]
    for i in range(12):
        for s in rng.sample(range(3), rng.randint(1, 3)):
            stores[s] += tstation(f"p{i}", rng.randint(first_h, 20) * H, rng.randint(shortest_min, 90))
    return stores


def test_the_mall_counts_each_station_once_whatever_the_split_into_stores() -> None:
    rng = random.Random(5)
    for _ in range(20):
        stores = random_mall(rng, 10, 6)
        days = [connected_day(*day(b), RULES, DAY_START_MS) for b in stores if b]
        mall = mall_connected_day(days)
        assert mall.visitors == len({int(d) for cd in days for d in cd.device.tolist()})
        assert max(d.visitors for d in days) <= mall.visitors <= sum(d.visitors for d in days)
        assert len(mall.dwell_ms) == sum(len(d.dwell_ms) for d in days)


def same_day(a: ConnectedDay | None, b: ConnectedDay | None) -> bool:
    """Two connected days equal in every field (arrays in the same order)."""
    if a is None or b is None:
        return a is b
    return (a.visitors, a.staff_excluded) == (b.visitors, b.staff_excluded) and all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in ("dwell_ms", "device", "start", "end", "staff"))


@pytest.mark.parametrize(("batch", "rules"), [
    (tstation("a", 11 * H, 30) + tstation("b", 12 * H, 50) + tstation("a", 15 * H, 7), RULES),
    (tstation("clerk", 10 * H, 8 * 60, every=60) + tstation("shopper", 12 * H, 30), RULES),  # same-day staff
    (tstation("clerk", 10 * H, 8 * 60, every=60) + tstation("shopper", 12 * H, 30),
     Rules(staff_devices=(dev("shopper"),))),  # the manual list: nobody left
    (tstation("boss", 11 * H, 2) + tstation("z", 13 * H, 3), Rules(staff_devices=(dev("boss"),))),  # no visit
    (tstation("j", 11 * H, 10) + tstation("j", 11 * H + 20 * 60, 10) + tstation("s", 14 * H, 10)
     + tstation("s", 14 * H + 30 * 60, 10), RULES),  # one visit across a break; two visits of one station
])
def test_the_stored_record_gives_back_the_day(batch: list, rules: Rules) -> None:
    ts, device = day(batch)
    record = connected_record(ts, device, rules, DAY_START_MS)
    assert same_day(recorded_day(record), connected_day(ts, device, rules, DAY_START_MS))
    assert record.stations == len(set(device.tolist()))
    # a staff row is the station's first and last poll of the day, and carries no visit
    for d in record.device[record.staff].tolist():
        mine = device == d
        assert (record.start[record.device == d].tolist(), record.end[record.device == d].tolist()) == (
            [int(ts[mine].min())], [int(ts[mine].max())])
    # the rows come back from the database in any order
    order = np.array(random.Random(1).sample(range(len(record)), len(record)), dtype=np.int64)
    shuffled = ConnectedRecord(record.stations, record.device[order], record.start[order], record.end[order],
                               record.staff[order])
    assert same_day(recorded_day(shuffled), recorded_day(record))


def test_no_station_heard_is_no_day() -> None:
    empty = np.zeros(0, dtype=np.int64)
    record = connected_record(empty, empty.astype(np.uint64), RULES, DAY_START_MS)
    assert (record.stations, len(record), recorded_day(record)) == (0, 0, None)


def test_stored_records_give_the_same_blocks_and_hours_as_the_polls() -> None:
    rng = random.Random(8)
    for _ in range(20):
        stores = random_mall(rng, 9, 2)
        stores[rng.randrange(3)] += tstation("clerk", 10 * H, 9 * 60)
        polls = [connected_day(*day(b), RULES, DAY_START_MS) for b in stores if b]
        stored = [recorded_day(connected_record(*day(b), RULES, DAY_START_MS)) for b in stores if b]
        assert all(d is not None for d in stored)
        kept = [d for d in stored if d is not None]
        assert connected_figures(kept) == connected_figures(polls)
        assert same_day(mall_connected_day(kept), mall_connected_day(polls))
        assert connected_hours(mall_connected_day(kept), DAY_START_MS) == connected_hours(
            mall_connected_day(polls), DAY_START_MS)
