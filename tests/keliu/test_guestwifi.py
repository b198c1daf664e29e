"""keliu.testing.guestwifi: visitors who join the guest Wi-Fi, their association frames and the AP's station list,
beside an untouched crowd."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from keliu.testing.accuracy import measure
from keliu.testing.crowd import PRESETS, simulate
from keliu.testing.guestwifi import KIND_ASSOC, KIND_PROBE, GuestWifi, joins


def small(preset: str):  # type: ignore[no-untyped-def]
    return replace(PRESETS[preset], days=1, visitors_per_day=150, passersby_per_day=300)


def test_join_probability_grows_with_the_stay() -> None:
    w = GuestWifi()
    assert w.join_probability(720.0) == pytest.approx(0.10)
    assert w.join_probability(7200.0) == pytest.approx(0.35)
    assert w.join_probability(720.0) < w.join_probability(2400.0) < w.join_probability(7200.0)
    assert w.join_probability(60.0) == 0.0 and w.join_probability(86400.0) <= 1.0


def test_the_crowd_is_untouched_and_the_joins_deterministic() -> None:
    air, truth = simulate("half", 1)
    again, _ = simulate("half", 1)
    j = joins(air, truth, 1)
    assert air.kind is None and np.array_equal(air.mac, again.mac) and np.array_equal(air.ts, again.ts)
    merged = air.merged(j.frames)
    assert merged.kind is not None and len(merged) == len(air) + len(j.frames)
    own = merged.ssid != np.array([j.frames.ssid[0]] * len(merged), object)
    # the crowd's frames, in their order, are the rows not the joins' (the guest SSID is nobody else's)
    assert np.array_equal(merged.mac[own], air.mac) and np.array_equal(merged.seq[own], air.seq)
    assert np.all(np.diff(merged.ts) >= 0)
    k = joins(air, truth, 1)
    assert k.sessions == j.sessions and np.array_equal(k.frames.mac, j.frames.mac)
    assert joins(air, truth, 2).sessions != j.sessions
    assert j.heard(air).mac.tolist() == merged.mac.tolist()  # by default the scans stay on the rotating MACs
    # the joins and the scans made while associated draw from streams of their own
    moved = joins(air, truth, 1, GuestWifi(scans_associated=True))
    assert moved.sessions == j.sessions and np.array_equal(moved.frames.seq, j.frames.seq)


def test_scans_made_while_associated_can_come_from_the_associated_address() -> None:
    sc = small("native")
    air, truth = simulate(sc, 2)
    j = joins(air, truth, 2, GuestWifi(scans_associated=True))
    heard = j.heard(air)
    crowd = heard.ssid != np.array([GuestWifi().ssid] * len(heard), object)
    mac, pid, ts = heard.mac[crowd], heard.pid[crowd], heard.ts[crowd]
    assert np.array_equal(pid, air.pid) and np.array_equal(ts, air.ts)  # the same frames, some re-addressed
    people = {p.pid: p for p in truth.people}
    associated = np.zeros(len(mac), bool)
    for s in j.sessions:
        inside = (pid == s.pid) & (ts > s.start) & (ts < s.end)
        if people[s.pid].phone.behaviour == "fixed":
            assert np.all(mac[inside] == air.mac[inside])  # its one address all along
        else:
            assert np.all(mac[inside] == np.uint64(s.mac))
            associated |= inside
    assert associated.any()
    # every other frame keeps the MAC the crowd gave it
    assert np.array_equal(mac[~associated], air.mac[~associated])


def test_who_joins_when_and_from_which_address() -> None:
    sc = PRESETS["half"]
    air, truth = simulate(sc, 1)
    j = joins(air, truth, 1)
    people = {p.pid: p for p in truth.people}
    visits = [(p.pid, s, e) for p in truth.people if p.kind == "visitor" for s, e in p.visits]
    assert {people[s.pid].kind for s in j.sessions} == {"visitor"}
    share = len(j.sessions) / len(visits)
    assert 0.15 < share < 0.35
    joined = {(s.pid, v) for s in j.sessions for p, v, e in visits if p == s.pid and v <= s.start < e}
    long = [e - s >= 3600 for _p, s, e in visits]
    was = [(p, s) in joined for p, s, _e in visits]
    assert np.mean([w for w, lg in zip(was, long) if lg]) > np.mean([w for w, lg in zip(was, long) if not lg])
    for s in j.sessions:
        p = people[s.pid]
        start, end = next((a, b) for a, b in p.visits if a <= s.start < b)
        assert s.end == end and start + 10 <= s.start <= end - GuestWifi().min_left_s
        probe_macs = set(air.mac[air.pid == s.pid].tolist())
        if p.phone.behaviour == "fixed":
            assert probe_macs == {s.mac}  # its burned-in address
        else:
            assert (s.mac >> 41) & 1 and s.mac not in probe_macs  # a per-network address of its own
    # the frames: directed probes for the guest SSID, then the association request, from the session's address
    f = j.frames
    assert set(f.ssid) == {GuestWifi().ssid} and set(f.kind.tolist()) == {KIND_PROBE, KIND_ASSOC}
    starts = {(s.mac, s.start) for s in j.sessions}
    assoc = f.kind == KIND_ASSOC
    assert {(m, t) for m, t in zip(f.mac[assoc].tolist(), f.ts[assoc].tolist())} <= starts
    assert 0.8 < assoc.sum() / len(j.sessions) <= 1.0  # heard with the crowd's capture rate


def test_the_station_list_lists_a_session_until_a_minute_after_it_left() -> None:
    air, truth = simulate(small("native"), 3)
    w = GuestWifi()
    j = joins(air, truth, 3, w)
    assert j.sessions
    for s in j.sessions[:20]:
        t = j.poll_ts[j.poll_mac == np.uint64(s.mac)]
        mine = t[(t >= s.start - w.poll_s) & (t <= s.end + w.max_inactive_s + w.poll_s)]
        assert s.start <= mine[0] < s.start + w.poll_s
        assert s.end + w.max_inactive_s - w.poll_s < mine[-1] <= s.end + w.max_inactive_s
        assert np.allclose(np.diff(mine), w.poll_s)


def test_the_report_sees_the_joined_phones_exactly_and_pairs_them() -> None:
    """Through the sensor's identifier and analytics' functions: the connected visits are the sessions (a minute
    late at the end), and where nobody randomizes every pair's phone is counted, its probe dwell a little longer
    than its connected one (it was there before it logged in)."""
    sc = small("none")
    air, truth = simulate(sc, 1)
    j = joins(air, truth, 1)
    (r,) = measure(air, truth, joins=j)
    c = r.connected
    assert c is not None and c.day.visitors == len(j.sessions)
    exact = np.sort(c.day.dwell_ms / 1000.0)
    assert np.all(np.abs(exact - np.sort(c.truth_dwell_s) - 55) <= 15)
    cal = c.calibration
    heard = {int(m) for m in j.frames.mac[j.frames.kind == KIND_ASSOC]}
    assert cal is not None and cal["pairs"] == len(heard) >= 10  # every station whose association was heard
    assert cal["detection_rate"] >= 0.95
    assert cal["dwell_ratio"] is not None and 1.0 < cal["dwell_ratio"] < 1.15
    assert measure(air, truth)[0].connected is None
