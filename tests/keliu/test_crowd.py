"""keliu.testing.crowd: the hard store days of issue 17 (models, presets, truth), deterministic by seed."""
from __future__ import annotations

from collections import Counter

import numpy as np

from keliu.testing.crowd import PHONES, PRESETS, simulate


def test_models_and_popularity() -> None:
    assert len(PHONES) >= 40
    fams = Counter()
    for p in PHONES:
        fams[p.family] += p.weight
    total = sum(p.weight for p in PHONES)
    # many identical iPhones: one Apple element set is the most common fingerprint of all
    top, w = fams.most_common(1)[0]
    assert top.startswith("apple") and w / total > 0.2
    assert {p.behaviour for p in PHONES} == {"fixed", "timed", "perscan"}


def test_deterministic_by_seed() -> None:
    a, _ = simulate("half", 3)
    b, _ = simulate("half", 3)
    assert np.array_equal(a.ts, b.ts) and np.array_equal(a.mac, b.mac) and a.ssid == b.ssid
    c, _ = simulate("half", 4)
    assert len(c) != len(a) or not np.array_equal(c.mac, a.mac)
    assert np.all(np.diff(a.ts) >= 0)


def test_presets_behave_as_named() -> None:
    none, tn = simulate("none", 1)
    assert tn.macs == len(set(none.pid.tolist()))  # one MAC per phone
    assert not np.any((none.mac >> np.uint64(41)) & np.uint64(1))  # globally unique
    _, th = simulate("half", 1)
    rot = {p.pid for p in th.people if p.phone.behaviour == "timed"}
    assert 0.4 < len(rot) / len(th.people) < 0.6
    assert all(not p.phone.seq_reset for p in th.people if p.pid in rot)
    allr, ta = simulate("all_reset", 1)
    assert all(p.phone.behaviour == "timed" and p.phone.seq_reset for p in ta.people)
    # a restarted counter: consecutive MACs of one phone do not continue it
    pid = next(p.pid for p in ta.people if p.kind == "staff")
    m = allr.pid == pid
    macs, seqs = allr.mac[m], allr.seq[m]
    change = np.flatnonzero(macs[1:] != macs[:-1])
    jumps = (seqs[change + 1] - seqs[change]) & 0xFFF
    assert np.mean(jumps > 64) > 0.8


def test_truth_per_day() -> None:
    air, truth = simulate(PRESETS["half"], 1)
    for day in range(2):
        t = truth.day(air, day)
        assert t["visitors"] == 300
        assert 900 < t["passersby"] < 2000  # not every passer-by probes while in range
        assert t["staff"] == 5
        assert 12 * 60 < t["median_dwell_s"] < 120 * 60
        assert abs(t["capture_rate"] - t["visitors"] / (t["visitors"] + t["passersby"])) < 1e-12
    repeat = [p for p in truth.people if p.kind == "visitor" and len(p.visits) > 1]
    assert 50 <= len(repeat) <= 100  # 25 % of day 2's visitors came on day 1


def test_the_mall_crowd_reaches_a_thousand_phones_in_range() -> None:
    """Issue 17 item 4: crowds up to 1,000 phones in range (population only: no frames simulated)."""
    from dataclasses import replace

    from keliu.testing.crowd import Truth, population

    sc = replace(PRESETS["crowd"], days=1)
    peak = Truth(sc, population(sc, 1), 0).peak_in_range(0)
    assert 1000 <= peak <= 1100
    store = PRESETS["native"]
    assert Truth(store, population(store, 1), 0).peak_in_range(0) < 100  # a store's day is far smaller
