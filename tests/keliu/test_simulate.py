"""The store-day simulator: deterministic, consistent with its truth, and readable by tshark."""
from __future__ import annotations

import subprocess
from pathlib import Path

from keliu.testing.simulate import DEMO, MODELS, Person, Scenario, simulate, write_pcap
from tests.conftest import require_tool

SMALL = Scenario(passersby_per_day=40, visitors_per_day=12, staff=1, days=2)


def test_same_seed_same_day() -> None:
    a, ta = simulate(SMALL, 3)
    b, tb = simulate(SMALL, 3)
    assert a == b
    assert ta.people == tb.people
    assert simulate(SMALL, 4)[0] != a


def test_truth_matches_frames() -> None:
    frames, truth = simulate(SMALL, 1)
    assert [f.ts for f in frames] == sorted(f.ts for f in frames)
    assert {f.mac: f.pid for f in frames} == dict(truth.mac_owner)
    assert len(truth.of_kind("staff")) == 1
    assert len(truth.of_kind("passerby")) == 2 * 40
    # every frame falls inside one of its person's visits
    people = {p.pid: p for p in truth.people}
    for f in frames[::50]:
        assert any(s <= f.ts <= e + 1 for s, e in people[f.pid].visits)
    # naive MAC counting overcounts because half of the phones rotate their MAC
    assert truth.macs > truth.devices
    # day 2 has repeat visitors
    day1 = {pid for pid, _s, _e in truth.visits_on(0)}
    day2 = {pid for pid, _s, _e in truth.visits_on(1)}
    assert day1 & day2


def test_rotating_model_changes_mac_and_fixed_one_does_not() -> None:
    day = Scenario().day_start(0)
    people = (Person(0, "visitor", "ios14", bytes.fromhex("f0d1a9000001"), -50.0, ((day, day + 3600),)),
              Person(1, "visitor", "legacy-android", bytes.fromhex("f025b7000002"), -50.0, ((day, day + 3600),)))
    frames, truth = simulate(Scenario(people=people), 0)
    macs = {pid: {f.mac for f in frames if f.pid == pid} for pid in (0, 1)}
    assert macs[1] == {bytes.fromhex("f025b7000002")}
    assert len(macs[0]) > 3
    assert all(m[0] & 0x02 for m in macs[0])
    assert truth.devices == 2


def test_write_pcap_is_what_tshark_reads(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    frames, _ = simulate(Scenario(passersby_per_day=5, visitors_per_day=5, staff=1,
                                  freqs=(2412, 5180), models=tuple(MODELS)), 2)
    path = tmp_path / "day.pcap"
    assert write_pcap(path, frames) == len(frames)
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "wlan.sa",
                          "-e", "radiotap.dbm_antsignal", "-e", "wlan.seq", "-e", "radiotap.channel.freq",
                          "-e", "_ws.malformed"], capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(frames)
    for f, (ts, sa, sig, seq, freq, malformed) in zip(frames, rows):
        assert abs(float(ts) - f.ts) < 1e-5
        assert sa == ":".join(f"{b:02x}" for b in f.mac)
        assert (int(sig), int(seq), int(freq), malformed) == (f.rssi, f.seq, f.freq, "")


def test_demo_day_is_a_busy_day() -> None:
    frames, truth = simulate(DEMO, 7)
    assert 15_000 < len(frames) < 40_000
    assert len(truth.of_kind("visitor")) == DEMO.visitors_per_day
