"""Sightings → visits: thresholds, hysteresis, gap, minimum dwell; and exact incremental merging (Hypothesis)."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.metrics import store_day
from analytics.visits import (
    Rules,
    device_codes,
    device_hex,
    empty_state,
    longest_gap_s,
    merge,
    rssi_values,
    screen_off_joins,
    summarize,
    visits,
)
from tests.analytics.builders import DAY_START_MS, arrays, dev, tsighting, tvisit

R = Rules()


def run(batch, rules=R):
    ts, d, r = arrays(batch)
    return visits(summarize(ts, d, r, rules, DAY_START_MS), rules)


def observed_minutes(v):
    """From the first strong sighting to the last inside one: what the visit rules decide on."""
    return [x / 60000 for x in v.observed_ms.tolist()]


def dwell_minutes(v):
    return [x / 60000 for x in v.dwell_ms.tolist()]


def test_a_strong_ten_minute_stay_is_one_visit():
    v = run(tvisit("a", 36000, 10))
    assert len(v) == 1
    assert observed_minutes(v) == [10.0]
    # a probe every minute: on average half a minute unseen before the first and after the last one
    assert dwell_minutes(v) == [11.0]
    assert v.device.tolist() == device_codes([dev("a")]).tolist()


def test_shorter_than_min_dwell_is_no_visit():
    assert len(run(tvisit("a", 36000, 4.9))) == 0


def test_weak_signal_is_no_visit():
    assert len(run(tvisit("a", 36000, 30, rssi=-75))) == 0


def test_hysteresis_keeps_a_visit_between_thresholds():
    # enters at -60, then stays at -68 (below visit_rssi, above stay_rssi) for 20 minutes
    batch = [tsighting(36000, "a", -60)] + tvisit("a", 36060, 20, rssi=-68)
    assert observed_minutes(run(batch)) == [21.0]
    # with a single threshold (stay = visit) the same device never makes 5 minutes above -65
    single = Rules(stay_rssi=-65)
    assert len(run(batch, single)) == 0


def test_visit_starts_at_first_strong_sighting():
    batch = tvisit("a", 36000, 10, rssi=-69) + tvisit("a", 36600, 10, rssi=-60)
    v = run(batch)
    assert (v.start.tolist()[0] - DAY_START_MS) // 1000 == 36600
    assert observed_minutes(v) == [10.0]
    assert dwell_minutes(v) == [11.0]  # the edge correction reads the cadence from the entry on


def test_a_gap_longer_than_visit_gap_splits_visits():
    # a probe every minute: the silence is unseen time once the next scan (60 s) was due; the time-out is 900 s
    batch = tvisit("a", 36000, 10) + tvisit("a", 36000 + 600 + 961, 10)
    assert observed_minutes(run(batch)) == [10.0, 10.0]
    batch = tvisit("a", 36000, 10) + tvisit("a", 36000 + 600 + 900, 10)
    assert observed_minutes(run(batch)) == [35.0]


def test_weak_sightings_do_not_bridge_a_gap():
    batch = tvisit("a", 36000, 10) + tvisit("a", 36600, 20, rssi=-80, every=120) + tvisit("a", 36600 + 1200 + 60, 10)
    assert observed_minutes(run(batch)) == [10.0, 10.0]


# -------------------------------------------------------------------------------------------------------------
# dwell: the observed span plus the edge correction sum(g**2) / sum(g) over the visit's gaps (docs/METRICS.md)


def test_edge_correction_is_the_length_biased_mean_gap():
    # gaps 30, 30, 30, 300, 30, 30 s (the screen off once): sum(g) = 450, sum(g**2) = 94,500 -> 210 s
    times = [36000 + t for t in (0, 30, 60, 90, 390, 420, 450)]
    v = run([tsighting(t, "a") for t in times], Rules(min_dwell_s=300))
    assert observed_minutes(v) == [7.5]
    assert v.edge_ms.tolist() == [94_500_000 // 450]
    assert v.dwell_ms.tolist() == [450_000 + 210_000]


def test_a_burst_counts_once_and_weak_sightings_are_no_scans():
    # bursts of three frames 20 ms apart every 60 s: the same cadence as single probes
    burst = [tsighting(36000 + 60 * i + 0.02 * k, "a") for i in range(11) for k in range(3)]
    v = run(burst)
    assert v.edge_ms.tolist() == [60_000] and v.observed_ms.tolist() == [600_040]
    # a weak probe (not inside) between two inside ones is not a scan of the visit's cadence: the gap stays 120 s
    times = [36000 + 120 * i for i in range(6)]
    batch = [tsighting(t, "b") for t in times] + [tsighting(t + 60, "b", -80) for t in times]
    v = run(batch)
    assert observed_minutes(v) == [10.0] and v.edge_ms.tolist() == [120_000]


def test_edge_correction_is_bounded_by_the_visit_gap():
    # a silence longer than visit_gap_s would have ended the visit, so no gap, hence no correction, exceeds it
    times = [36000 + 900 * i for i in range(4)]
    v = run([tsighting(t, "a") for t in times])
    assert v.edge_ms.tolist() == [900_000]


def test_edge_corrected_dwell_is_unbiased_for_random_scans():
    # presence of 30 min, scans at random (exponential gaps of mean 120 s): the observed span misses about one mean
    # gap at each end; the corrected dwell is about right on average (Poisson scans: sum(g**2)/sum(g) -> 2 x 120 s)
    rng = random.Random(7)
    batch, start = [], 36000.0
    for p in range(400):
        t = start + rng.expovariate(1 / 120)
        while t < start + 1800:
            batch.append(tsighting(t, p))
            t += rng.expovariate(1 / 120)
    v = run(batch, Rules(min_dwell_s=60))
    observed = float(np.mean(v.observed_ms)) / 1000
    corrected = float(np.mean(v.dwell_ms)) / 1000
    assert observed < 1800 * 0.9
    assert corrected == pytest.approx(1800, rel=0.05)


# -------------------------------------------------------------------------------------------------------------
# silences inside a visit: joined when the phone's own slowest cadence explains them (docs/METRICS.md)


def screen_off(device, start, minutes_on, off_every, off_scans, rssi=-55):
    """A phone a minute apart with the screen on for ``minutes_on``, then ``off_scans`` scans ``off_every`` seconds
    apart (screen off). Returns the sightings and the time of its last scan."""
    batch = tvisit(device, start, minutes_on, rssi)
    t = start + minutes_on * 60
    for _ in range(off_scans):
        t += off_every
        batch.append(tsighting(t, device, rssi))
    return batch, t


def state(batch, rules=R):
    return summarize(*arrays(batch), rules, DAY_START_MS)


def test_a_screen_off_silence_inside_a_visit_is_joined():
    # 10 min screen on, then screen off: scans 600 s apart (the phone's slowest cadence), then a silence of 1,400 s
    # (a scan missed) and the screen on again for 10 min: one visit
    first, t = screen_off("a", 36000, 10, 600, 2)
    batch = first + tvisit("a", t + 1400, 10)
    s = state(batch)
    assert len(s.runs) == 2  # the store's time-out splits the runs, as before
    assert screen_off_joins(s.runs, s.marks, R).tolist() == [False, True]
    v = visits(s, R)
    assert observed_minutes(v) == [(t + 1400 + 600 - 36000) / 60]
    # the edge correction reads the parts' gaps, not the silence: ten of 60 s, two of 600 s, ten of 60 s
    assert v.edge_ms.tolist() == [(20 * 60**2 + 2 * 600**2) * 1000 // (20 * 60 + 2 * 600)]


def test_leaving_for_40_minutes_is_two_visits_whatever_the_cadence():
    # the slowest cadence a run can show is visit_gap_s itself, so no silence over twice visit_gap_s is joined
    for every in (60, 300, 600, 900):
        first, t = screen_off("a", 36000, 10, every, 2)
        v = run(first + tvisit("a", t + 40 * 60, 10))
        assert len(v) == 2, every
    first, t = screen_off("a", 36000, 10, 900, 2)
    assert len(run(first + tvisit("a", t + 1800, 10))) == 1  # the longest silence ever joined
    assert len(run(first + tvisit("a", t + 1801, 10))) == 2


def test_a_silence_is_joined_up_to_the_gap_plus_the_slowest_cadence_of_either_side():
    first, t = screen_off("a", 36000, 10, 400, 1)
    assert len(run(first + tvisit("a", t + 900 + 400, 10))) == 1
    assert len(run(first + tvisit("a", t + 900 + 401, 10))) == 2
    # the phone's cadence after the silence counts too: screen off first after its return
    second, _ = screen_off("a", 36000 + 600 + 1200, 10, 500, 1)
    v = run(tvisit("a", 36000, 10) + second)  # silence 1,200 s; slowest gaps 60 s before, 500 s after
    assert len(v) == 1


def test_a_screen_on_phone_that_leaves_for_17_minutes_makes_two_visits():
    # scans a minute apart: 17 silent minutes are not a missed scan, the shopper left
    assert observed_minutes(run(tvisit("a", 36000, 20) + tvisit("a", 36000 + 1200 + 1020, 20))) == [20.0, 20.0]


def test_joins_need_the_phone_strongly_inside_on_both_sides():
    # after the silence the phone is inside (-68 dBm) but never strong: that run was no visit before and stays
    # out of the visit
    first, t = screen_off("a", 36000, 10, 600, 2)
    v = run(first + tvisit("a", t + 1400, 10, rssi=-68))
    assert len(v) == 1 and (v.end.tolist()[0] - DAY_START_MS) // 1000 == t


def test_a_join_extends_a_visit_with_a_short_strong_fragment():
    # a 3-minute strong fragment (no visit on its own), a silence of 1,300 s, then a visit whose phone shows scans
    # 500 s apart: one visit, from the fragment's entry
    tail, t = screen_off("a", 36000 + 180 + 1300, 0, 500, 1)
    v = run(tvisit("a", 36000, 3) + tail + tvisit("a", t, 10))
    assert len(v) == 1 and (v.start.tolist()[0] - DAY_START_MS) // 1000 == 36000


def test_fragments_joined_across_a_screen_off_silence_make_a_visitor():
    # seed 2's vivo X100 (docs/METRICS.md, "Silences inside a visit"): scans for 4 minutes as the shopper walks in,
    # the screen off for 15 minutes, one scan on the way out. Neither part lasts 5 minutes, but the silence is one
    # the phone's cadence explains (at most 900 s + 60 s), so the presence is one visit of 19 minutes and counts,
    # as it would have if the silence had been 5 s shorter than the store's time-out
    batch = tvisit("a", 36000, 4) + [tsighting(36000 + 240 + 905, "a")]
    s = state(batch)
    assert len(s.runs) == 2 and screen_off_joins(s.runs, s.marks, R).tolist() == [False, True]
    v = visits(s, R)
    assert observed_minutes(v) == [(240 + 905) / 60]
    assert v.edge_ms.tolist() == [60_000]  # the parts' gaps (four of 60 s), not the silence
    r = store_day(s, R, DAY_START_MS).rollup("1d")[0]
    assert (r.visitors, r.passersby, r.visits) == (1, 0, 1)
    # the same phone's silence 61 s longer is not explained: two fragments, no visit, a passer-by
    s = state(tvisit("a", 36000, 4) + [tsighting(36000 + 240 + 966, "a")])
    assert not screen_off_joins(s.runs, s.marks, R).any() and len(visits(s, R)) == 0
    # two fragments joined that still do not last min_dwell_s stay no visit (one scan each, 2 minutes apart,
    # across a silence of 100 s: one run, 100 s observed)
    assert len(run([tsighting(36000, "b"), tsighting(36100, "b")])) == 0
    # fragments of 250 s (scans 250 s apart) across a silence of 1,100 s: one visit of 1,600 s
    v = run([tsighting(36000 + x, "c") for x in (0, 250, 250 + 1100, 250 + 1100 + 250)])
    assert observed_minutes(v) == [1600 / 60]


def test_joins_chain_and_keep_devices_apart():
    # three runs of one phone with two screen-off silences (its slowest gap 700 s) make one visit; another phone
    # with the same silences but a screen-on cadence makes three
    a1, t1 = screen_off("a", 36000, 10, 700, 1)
    a2, t2 = screen_off("a", t1 + 1500, 10, 700, 1)
    b = tvisit("b", 36000, 10) + tvisit("b", 36000 + 600 + 1500, 10) + tvisit("b", 36000 + 2 * (600 + 1500), 10)
    v = run(a1 + a2 + tvisit("a", t2 + 1500, 10) + b)
    got = {d: n for d, n in zip(*np.unique(v.device, return_counts=True))}
    assert got == {device_codes([dev("a")])[0]: 1, device_codes([dev("b")])[0]: 3}


def test_longest_gap_of_runs():
    first, t = screen_off("a", 36000, 10, 450, 2)
    s = state(first + tvisit("a", t + 2000, 10) + [tsighting(40000, "c")])
    r = s.runs
    got = dict(zip(zip(r.device.tolist(), ((r.start - DAY_START_MS) // 1000).tolist()),
                   longest_gap_s(s.marks, r.device, r.start, r.end).tolist()))
    a, c = (int(x) for x in device_codes([dev("a"), dev("c")]))
    assert got == {(a, 36000): 450, (a, t + 2000): 60, (c, 40000): 0}


def test_missing_rssi_never_qualifies():
    batch = [tsighting(36000 + 60 * i, "a", None) for i in range(20)]
    assert len(run(batch)) == 0
    assert rssi_values([None, -50]).tolist() == [-100, -50]


def test_devices_are_kept_apart():
    v = run(tvisit("a", 36000, 10) + tvisit("b", 36000, 30))
    assert sorted(observed_minutes(v)) == [10.0, 30.0]


def test_device_codes_roundtrip_hex_and_hash_others():
    d = dev("x")
    assert device_hex(device_codes([d])[0]) == d
    other = device_codes(["not-hex-id", "not-hex-id", "zzzzzzzzzzzzzzzz"])
    assert other[0] == other[1] and other[0] != other[2]


def test_sightings_outside_the_day_take_the_general_sort():
    batch = tvisit("a", -3600 * 20, 10) + tvisit("a", 36000, 10)
    assert dwell_minutes(run(batch)) == [11.0, 11.0]


@pytest.mark.parametrize("rules", [R, Rules(min_dwell_s=120, visit_gap_s=120, stay_rssi=-72)])
def test_empty_and_merge_with_empty(rules):
    ts, d, r = arrays(tvisit("a", 36000, 10))
    s = summarize(ts, d, r, rules, DAY_START_MS)
    m = merge(empty_state(), s, rules)
    assert m.runs == s.runs and m.seen == s.seen
    assert len(visits(empty_state(), rules)) == 0


# -------------------------------------------------------------------------------------------------------------
# incremental: any split of the day's sightings, in any order, gives exactly the one-batch result

def _day(seed: int, people: int = 25):
    rng = random.Random(seed)
    out = []
    for p in range(people):
        t = rng.uniform(36000, 70000)
        base = rng.choice([-85, -72, -66, -58])
        for _ in range(rng.randint(1, 40)):
            t += rng.expovariate(1 / rng.choice([30, 120, 600]))
            out.append(tsighting(t, p, base + rng.randint(-8, 8), seq=len(out)))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 10**6), max_size=8),
       shuffle=st.booleans(), staff_fraction=st.sampled_from([0.6, 0.1]))
def test_any_split_in_any_order_equals_one_batch(seed, cuts, shuffle, staff_fraction):
    rules = Rules(staff_fraction=staff_fraction, visit_gap_s=300)
    day = _day(seed)
    order = list(range(len(day)))
    if shuffle:
        random.Random(seed + 1).shuffle(order)
    points = sorted({c % (len(day) + 1) for c in cuts} | {0, len(day)})
    batches = [[day[i] for i in order[a:b]] for a, b in itertools.pairwise(points)]
    whole = summarize(*arrays(day), rules, DAY_START_MS)
    state = empty_state()
    for b in batches:
        state = merge(state, summarize(*arrays(b), rules, DAY_START_MS) if b else empty_state(), rules)
    assert state.runs == whole.runs
    assert state.seen == whole.seen
    assert state.marks == whole.marks
    assert visits(state, rules) == visits(whole, rules)
    assert store_day(state, rules, DAY_START_MS).rollups == store_day(whole, rules, DAY_START_MS).rollups


def test_split_property_is_not_vacuous():
    day = _day(3)
    whole = summarize(*arrays(day), Rules(visit_gap_s=300), DAY_START_MS)
    assert len(visits(whole, Rules(visit_gap_s=300))) > 0
    assert len(whole.runs) > len(np.unique(whole.runs.device))  # some devices have several runs
    assert screen_off_joins(whole.runs, whole.marks, Rules(visit_gap_s=300)).any()  # and some are joined


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=300), st.integers(1, 5))
def test_device_ranks_by_hashing_match_sorting(codes, repeat):
    from analytics.visits import _ranks

    # many codes sharing their high bits: they collide in the hash table and probe onwards
    arr = np.array(codes * repeat + [c & 0xFFFF for c in codes], dtype=np.uint64)
    rank, uniq = _ranks(arr)
    assert np.array_equal(uniq, np.unique(arr))
    assert np.array_equal(uniq[rank], arr)
