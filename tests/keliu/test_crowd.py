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


def test_second_sets_are_the_measured_ones() -> None:
    """Phones that probe with a second element set from MACs of their own, per model as measured on the Baccichet
    captures (docs/METRICS.md "The simulator"): the iPhone 12's family sends the iPhone 11's set, the iPhone XR,
    the Oppo and the Samsung models a set of their own; the iPhone 11, the iPhone 8 and the A16 iPhones none."""
    by = {p.name: p for p in PHONES}
    a13 = by["iPhone 11"].fingerprint
    for name in ("iPhone 12", "iPhone 13", "iPhone 14", "iPhone SE 3"):
        sec = by[name].second
        assert sec is not None and sec.fingerprint == a13 and sec.rate == 8 / 37 and sec.db == (-12.0, -7.0)
    xr = by["iPhone XR"].second
    assert xr is not None and xr.rate == 5 / 32 and xr.fingerprint not in {p.fingerprint for p in PHONES}
    for name in ("iPhone 11", "iPhone 8", "iPhone 15", "iPhone 15 Pro", "iPhone 14 Pro", "Xiaomi 14"):
        assert by[name].second is None
    for p in PHONES:
        if p.name.startswith(("OPPO", "Samsung")):
            assert p.second is not None and p.second.rate == (4 / 10 if p.name.startswith("OPPO") else 1 / 24)
            assert p.second.fingerprint != p.fingerprint


def test_second_sets_at_their_rate_on_macs_of_their_own() -> None:
    air, truth = simulate("native", 2)
    people = {p.pid: p for p in truth.people}
    main_fp = np.array([people[int(pid)].phone.fingerprint for pid in air.pid])
    alt = air.fp != main_fp
    assert alt.any()
    macs_alt, macs_main = set(air.mac[alt].tolist()), set(air.mac[~alt].tolist())
    perscan = np.array([people[int(pid)].phone.behaviour == "perscan" for pid in air.pid])
    # a per-scan phone sends each scan with the other set from a MAC of its own; a timed one from the MAC it has
    assert not set(air.mac[alt & perscan].tolist()) & macs_main
    assert set(air.mac[alt & ~perscan].tolist()) <= macs_main
    assert macs_alt - macs_main
    # per model, scans with the second set per ordinary scan: the measured rate (visitors: whole presences; a scan
    # is a MAC for a per-scan phone, some scans are not heard at all and a second set's scan may fall after the
    # presence ended: within 25 %)
    for name, rate in (("iPhone 12", 8 / 37), ("iPhone 13", 8 / 37), ("iPhone XR", 5 / 32)):
        pids = np.array([p.pid for p in truth.people if p.phone.name == name and p.kind == "visitor"])
        mine = np.isin(air.pid, pids)
        n_alt, n_main = len(np.unique(air.mac[mine & alt])), len(np.unique(air.mac[mine & ~alt]))
        assert n_main > 200
        assert abs(n_alt / n_main - rate) <= 0.25 * rate, (name, n_alt, n_main)
    # the signal: the phone's own give or take the measured offset
    iphone12 = np.isin(air.pid, [p.pid for p in truth.people if p.phone.name == "iPhone 12"])
    own = np.array([people[int(pid)].rssi for pid in air.pid[iphone12 & alt]])
    assert -12.0 - 1.0 <= float(np.mean(air.rssi[iphone12 & alt] - own)) <= -7.0 + 1.0


def test_second_sets_leave_the_ordinary_frames_as_they_were() -> None:
    """Second sets draw from a random stream of their own: the phones' own frames are frame for frame those of the
    same population without second sets (the accuracy tables before and after compare the same scans)."""
    from dataclasses import replace

    from keliu.testing.crowd import heard, population

    sc = replace(PRESETS["native"], days=1, visitors_per_day=60, passersby_per_day=300)
    people = population(sc, 5)
    with_sets, _ = heard(sc, people, 5)
    without, _ = heard(sc, tuple(replace(p, phone=replace(p.phone, second=None)) for p in people), 5)
    own = with_sets.fp == np.array([people[int(pid)].phone.fingerprint for pid in with_sets.pid])
    assert not own.all()
    assert np.array_equal(with_sets.ts[own], without.ts) and np.array_equal(with_sets.mac[own], without.mac)
    again, _ = heard(sc, people, 5)
    assert np.array_equal(again.mac, with_sets.mac) and np.array_equal(again.rssi, with_sets.rssi)


def test_the_oppos_second_set_probes_for_its_networks() -> None:
    """The real Oppo Find X3 Neo's second set probes for the same networks as its own (``SecondSet.named``): the
    OPPO models' second-set scans carry the person's names (one per frame after the first, with the model's chance
    of a directed scan), drawn from a stream of their own, so every frame is the one sent without names; the
    Samsung models' carry none."""
    from dataclasses import replace

    from keliu.testing.crowd import heard, population

    sc = replace(PRESETS["native"], days=1, visitors_per_day=120, passersby_per_day=300)
    people = population(sc, 3)
    named, _ = heard(sc, people, 3)
    plain, _ = heard(sc, tuple(replace(p, phone=replace(p.phone, second=replace(p.phone.second, named=False)))
                                if p.phone.second is not None else p for p in people), 3)
    for col in ("ts", "mac", "seq", "rssi", "fp", "pid"):
        assert np.array_equal(getattr(named, col), getattr(plain, col))
    by_pid = {p.pid: p for p in people}
    second = np.array([by_pid[int(pid)].phone.second is not None
                       and int(fp) == by_pid[int(pid)].phone.second.fingerprint for pid, fp in zip(named.pid, named.fp)])
    differ = np.array([a != b for a, b in zip(named.ssid, plain.ssid)])
    assert differ.any() and not (differ & ~second).any()  # only second-set frames gained names
    for i in np.flatnonzero(differ).tolist():
        person = by_pid[int(named.pid[i])]
        assert person.phone.name.startswith("OPPO") and named.ssid[i] in person.ssids
