"""Accuracy against ground truth: simulated store days (``keliu.testing.simulate``), the whole sensor → analytics path
through the CLI, and a real 24-hour lab capture with its occupancy column. Tolerances: docs/METRICS.md."""
from __future__ import annotations

import csv
import functools
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.metrics import History, store_day
from analytics.visits import Rules, device_codes, rssi_values, summarize, to_ms
from keliu.testing.simulate import Scenario, simulate, write_pcap
from tests.analytics.builders import from_frames
from tests.conftest import ROOT, require_shared_data

R = Rules()


def truth_of(frames, truth, day: int, rules: Rules = R) -> dict:
    """What a perfect counter with our definitions would report: visitors are people with a visit of at least
    the minimum dwell; passers-by everyone else heard above the passer-by threshold, except staff."""
    sc = truth.scenario
    lo, hi = sc.day_start(day), sc.day_start(day) + 86400
    visits = [(p, s, e) for p, s, e in truth.visits_on(day) if e - s >= rules.min_dwell_s]
    visitors = {p for p, _, _ in visits}
    heard = {f.pid for f in frames if lo <= f.ts < hi and f.rssi is not None and f.rssi >= rules.passerby_rssi}
    staff = {p.pid for p in truth.of_kind("staff")}
    prev = {p for p, s, e in truth.visits_on(day - 1) if e - s >= rules.min_dwell_s} if day else set()
    return {"visitors": len(visitors), "passersby": len(heard - visitors - staff), "staff": len(staff & heard),
            "median_dwell_s": statistics.median(e - s for _, s, e in visits), "repeat": len(visitors & prev)}


@pytest.mark.parametrize("seed", [1, 2])
def test_simulated_days_within_tolerances(seed):
    sc = Scenario(days=2)
    frames, truth = simulate(sc, seed)
    sightings = from_frames(frames)  # stable device ids across days: "linked" privacy mode
    history = History()
    for day in range(2):
        start = int(sc.day_start(day) * 1000)
        b = [s for s in sightings if start <= s.ts * 1000 < start + 86_400_000]
        state = summarize(to_ms([s.ts for s in b]), device_codes([s.device for s in b]),
                          rssi_values([s.rssi for s in b]), R, start)
        sd = store_day(state, R, start, history)
        (got,) = sd.rollup("1d")
        want = truth_of(frames, truth, day)
        print(f"seed {seed} day {day}: got {got.visitors}/{got.passersby}/{got.median_dwell_s:.0f}s/"
              f"{got.repeat_visitors} want {want}")
        assert got.visitors == pytest.approx(want["visitors"], rel=0.12)
        assert got.passersby == pytest.approx(want["passersby"], rel=0.05)
        cap = want["visitors"] / (want["visitors"] + want["passersby"])
        assert got.capture_rate == pytest.approx(cap, abs=0.02)
        assert got.median_dwell_s == pytest.approx(want["median_dwell_s"], rel=0.10)
        assert got.staff_excluded == want["staff"]
        assert got.repeat_visitors == pytest.approx(want["repeat"], rel=0.25)
        d = sd.devices
        ones = np.ones(int(d.visited.sum()), dtype=np.int64)
        history = History(d.device[d.visited], ones, d.device[d.auto_staff],
                          np.ones(int(d.auto_staff.sum()), dtype=np.int64))


def test_sensor_replay_then_analytics_report_end_to_end(tmp_path):
    """`keliu sensor replay FILE --store S --max` then `keliu analytics report --store S --date D`, on SQLite:
    the counts rest on the sensor's own de-randomized device estimates (strict privacy mode)."""
    sc = Scenario()
    frames, truth = simulate(sc, 5)
    write_pcap(tmp_path / "day.pcap", frames)
    env = {**os.environ, "KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", "KELIU_VAR_DIR": str(tmp_path / "var"),
           "KELIU_CONFIG": str(tmp_path / "keliu.toml")}
    (tmp_path / "keliu.toml").write_text('[[malls]]\nid = "m"\n[[stores]]\nid = "shop"\nmall = "m"\n'
                                         '[sensor]\nstore = "shop"\n')
    keliu = [sys.executable, "-m", "keliu.cli"]
    subprocess.run(keliu + ["sensor", "replay", str(tmp_path / "day.pcap"), "--store", "shop", "--max"], env=env,
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    day = datetime.fromtimestamp(sc.day_start(0) + 43200, UTC).date().isoformat()
    out = subprocess.run(keliu + ["analytics", "report", "--store", "shop", "--date", day], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    got = json.loads(out.stdout)
    want = truth_of(frames, truth, 0)
    print(f"end to end: got {got['visitors']}/{got['passersby']}/{got['staff_excluded']} want {want}")
    # de-randomization merges and splits phones (docs/METRICS.md): looser than the analytics-only tolerances
    assert got["visitors"] == pytest.approx(want["visitors"], rel=0.25)
    assert got["passersby"] == pytest.approx(want["passersby"], rel=0.30)
    assert got["capture_rate"] == pytest.approx(want["visitors"] / (want["visitors"] + want["passersby"]), abs=0.08)
    assert got["median_dwell_s"] == pytest.approx(want["median_dwell_s"], rel=0.25)


LAB = "fryza__sc6-61_2023-10-17_ver-99.csv"
LAB_PCAP = "fryza__sc6-61_2023-10-17_anonymized.pcap"  #: the same frames as captured (the CSV is made from them)
LAB_OFFSET_MS = 7_200_000  #: the CSV's times are the lab's local time (CEST, UTC+2); the capture's are UTC
WINDOW_MS = 900_000


@dataclass(frozen=True)
class Lab:
    """The 24-hour lab capture as the sensor reads it (its parser, its linker with the default policy in the lab's
    zone), frame by frame with the CSV's occupancy (the same frames in the same order)."""

    ms: np.ndarray  #: UTC epoch ms
    device: np.ndarray  #: keliu's device codes
    rssi: np.ndarray
    mac: list[str]  #: the source addresses (naive counting)
    occupancy: np.ndarray  #: people in the lab at each frame (the CSV's ground truth)
    day0: int  #: the lab's midnight, UTC epoch ms


@functools.cache
def lab() -> Lab:
    from sensor.frames import Parser, ProbeBatch
    from sensor.grouping import Identifier
    from sensor.identity import PrivacyPolicy

    with open(require_shared_data(LAB), newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    probes = list(Parser("verify").parse_capture(require_shared_data(LAB_PCAP).read_bytes()))
    epoch = datetime(1970, 1, 1)
    local = [int((datetime.fromisoformat(r["datetime"]) - epoch).total_seconds() * 1000) for r in rows]
    # the CSV is the capture's frames in the capture's order: the same sequence numbers, signals and times
    assert len(probes) == len(rows)
    assert all(p.seq == int(r["seq_num"]) and p.rssi == int(r["rssi"]) and abs(p.ts * 1000 + LAB_OFFSET_MS - t) < 1
               for p, r, t in zip(probes, rows, local))
    ident = Identifier(bytes(range(32)), PrivacyPolicy(utc_offset_s=LAB_OFFSET_MS // 1000))
    ids = ident.identify_batch(ProbeBatch.from_probes(probes)).tolist()
    assert None not in ids  # nothing opted out or ignored here
    return Lab(to_ms([p.ts for p in probes]), device_codes(ids), rssi_values([p.rssi for p in probes]),
               [r["src"] for r in rows], np.array([float(r["occupancy"]) for r in rows]),
               int((datetime(2023, 10, 17) - epoch).total_seconds() * 1000) - LAB_OFFSET_MS)


def lab_windows(rules: Rules) -> tuple[dict[int, float], dict[int, int], dict[int, int]]:
    """Per 15-minute window of the lab's day: mean ground-truth occupancy, naive unique MACs, and keliu's devices
    inside (visits overlapping the window)."""
    c = lab()
    win = (c.ms - c.day0) // WINDOW_MS
    occ: dict[int, list[float]] = {}
    macs: dict[int, set[str]] = {}
    for w, o, m in zip(win.tolist(), c.occupancy.tolist(), c.mac):
        occ.setdefault(w, []).append(o)
        macs.setdefault(w, set()).add(m)
    sd = store_day(summarize(c.ms, c.device, c.rssi, rules, c.day0), rules, c.day0)
    inside = {w: 0 for w in occ}
    v = sd.visits
    for s, e, staff in zip(v.start.tolist(), v.end.tolist(), sd.visit_staff.tolist()):
        if not staff:
            for w in range((s - c.day0) // WINDOW_MS, (e - c.day0) // WINDOW_MS + 1):
                if w in inside:
                    inside[w] += 1
    return {w: statistics.fmean(o) for w, o in occ.items()}, {w: len(m) for w, m in macs.items()}, inside


def test_real_lab_occupancy_mae_against_naive_mac_counting():
    occ, naive, ours = lab_windows(Rules(open_hour=0, close_hour=24))  # a lab is "open" all day
    mae = statistics.fmean(abs(ours[w] - occ[w]) for w in occ)
    mae_naive = statistics.fmean(abs(naive[w] - occ[w]) for w in occ)
    mae_zero = statistics.fmean(occ.values())
    print(f"lab: {len(occ)} windows; MAE keliu {mae:.3f}, naive MACs {mae_naive:.2f} "
          f"({min(naive.values())}-{max(naive.values())} MACs/window), always-zero {mae_zero:.3f}")
    assert min(naive.values()) >= 2 and max(naive.values()) >= 100  # the capture is what SOURCES.md says
    assert mae < mae_naive / 50
    assert mae <= mae_zero  # never worse than saying "nobody"
    assert max(ours.values()) <= 2


def test_real_lab_live_occupancy_against_right_now_counting():
    """Live occupancy (analytics.occupancy, the dashboard's "inside now", last 10 minutes) every minute of the lab's
    day against the people there at that minute, and against Cisco Spaces' "Right Now" as the issue describes it
    (every device heard in the last 10 minutes)."""
    from analytics.occupancy import WINDOW_S, present

    c = lab()
    rules = Rules(open_hour=0, close_hour=24)
    macs = np.array(c.mac)
    ours, right_now, truth = [], [], []
    for now in range(int(c.ms[0]) + WINDOW_S * 1000, int(c.ms[-1]), 60_000):
        truth.append(c.occupancy[int(np.searchsorted(c.ms, now, "right")) - 1])  # as of the last frame before
        ours.append(len(present(c.ms, c.device, c.rssi, rules, now).inside))
        heard = (c.ms > now - WINDOW_S * 1000) & (c.ms <= now)
        right_now.append(len(np.unique(macs[heard])))
    t = np.array(truth)
    mae, mae_right_now, mae_zero = (float(np.mean(np.abs(np.array(v) - t))) for v in (ours, right_now, 0 * t))
    print(f"lab, live: {len(t)} minutes; MAE keliu {mae:.3f}, right-now devices {mae_right_now:.2f}, "
          f"always-zero {mae_zero:.3f}")
    assert len(t) > 1400  # the whole day, minute by minute
    assert mae <= mae_zero  # never worse than saying "nobody"
    assert mae < mae_right_now / 50
    assert max(ours) <= 2


def _session_start(key: str) -> float:
    """The capture's start from a Pintor session name (local time in Cagliari, CEST = UTC+2), epoch seconds."""
    p = key.split("-")
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    local = datetime(int(p[2]), months.index(p[3]) + 1, int(p[4]), int(p[5][1:]), int(p[6][1:]), int(p[7][1:]))
    return local.replace(tzinfo=UTC).timestamp() - 7200


def test_real_phones_edge_corrected_dwell():
    """Real phones (Pintor & Atzori 2022: each capture one phone, present for the whole 20-minute capture, screen off
    in mode S, on in mode A), each phone its own device (perfect linking): the capture's start and end fall at times
    unrelated to the phone's scans, as a shopper's arrival and departure do. The observed span misses the ends; the
    edge-corrected dwell (docs/METRICS.md, "Visit") gets the 20 minutes back."""
    from sensor.frames import Parser

    raw = require_shared_data("pintor/raw")
    rules = Rules(open_hour=0, close_hour=24)
    sessions = sorted({p.name.split("-ch-")[0] for p in raw.glob("*.pcap")})
    observed, dwell = [], []
    for key in (k for k in sessions if k.endswith(("-modeS", "-modeA"))):
        probes = [p for f in sorted(raw.glob(f"{key}-ch-*.pcap")) if f.stat().st_size > 24
                  for p in Parser("verify").parse_capture(f.read_bytes())]  # type: ignore[arg-type]
        start = _session_start(key)
        ts = np.array([p.ts for p in probes if start <= p.ts < start + 1200])
        rssi = np.array([-100 if p.rssi is None else p.rssi for p in probes if start <= p.ts < start + 1200])
        if len(ts) == 0:
            continue
        day0 = int(np.floor(start / 86400) * 86_400_000)
        v = store_day(summarize(to_ms(ts), np.ones(len(ts), np.uint64), rssi.astype(np.int16), rules, day0),
                      rules, day0).visits
        if len(v) == 1:
            observed.append(int(v.observed_ms[0]) / 1000)
            dwell.append(int(v.dwell_ms[0]) / 1000)
    print(f"real phones: {len(dwell)} one-visit captures; observed {sorted(round(x) for x in observed)}; "
          f"dwell {sorted(round(x) for x in dwell)} (truth 1200 s each)")
    assert len(dwell) >= 12
    assert statistics.median(observed) < 1200 * 0.97  # the ends are missed
    assert statistics.median(dwell) == pytest.approx(1200, rel=0.03)
    assert statistics.fmean(abs(d - 1200) for d in dwell) < 0.5 * statistics.fmean(abs(o - 1200) for o in observed)
