"""Measuring the sensor → analytics path against a simulated crowd's truth (pure; used by bench/accuracy.py and
the accuracy tests).

:func:`measure` gives every frame of :mod:`keliu.testing.crowd`'s air its device id with the sensor's
:class:`sensor.grouping.Identifier` (default policy unless given: strict privacy, the linker on), reduces each day's
sightings to visits and the day's figures with analytics' own functions (default :class:`analytics.visits.Rules`),
and returns per day what keliu reports next to the truth and next to an *oracle* (the same analytics with perfect
de-randomization: each phone one device), which separates the linker's error from the definitions' own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.metrics import store_day
from analytics.visits import Rules, summarize
from keliu.testing.crowd import Air, Truth
from sensor.grouping import Identifier
from sensor.identity import PrivacyPolicy

MASTER = bytes(range(32))


@dataclass(frozen=True)
class DayResult:
    day: int
    truth: dict[str, float]
    got: dict[str, float]
    oracle: dict[str, float]
    link: dict[str, int]


def identify(air: Air, policy: PrivacyPolicy | None = None, chunk: int = 65536) -> tuple[np.ndarray, Identifier]:
    """Device ids (uint64 codes; 0 = dropped) of every frame, through the sensor's identifier in chunks."""
    ident = Identifier(MASTER, policy or PrivacyPolicy())
    out = np.zeros(len(air), np.uint64)
    for i in range(0, len(air), chunk):
        ids = ident.identify_batch(air.batch(i, min(len(air), i + chunk)))
        out[i:i + len(ids)] = np.array([0 if d is None else int(d, 16) for d in ids.tolist()], np.uint64)
    return out, ident


def figures(ts: np.ndarray, device: np.ndarray, rssi: np.ndarray, day_start: float, rules: Rules) -> dict[str, Any]:
    start_ms = round(day_start * 1000)
    ms = np.round(ts * 1000).astype(np.int64)
    sd = store_day(summarize(ms, device, rssi.astype(np.int16), rules, start_ms), rules, start_ms)
    (r,) = sd.rollup("1d")
    return {"visitors": r.visitors, "passersby": r.passersby, "median_dwell_s": float(r.median_dwell_s),
            "capture_rate": float(r.capture_rate), "phones": len(np.unique(device)),
            "staff": int(r.staff_excluded), "dwell_s": sd.visits.dwell_ms[~sd.visit_staff] / 1000.0}


def measure(air: Air, truth: Truth, policy: PrivacyPolicy | None = None, rules: Rules | None = None) -> list[DayResult]:
    rules = rules or Rules()
    dev, ident = identify(air, policy)
    out = []
    for day in range(truth.scenario.days):
        lo = truth.scenario.day_start(day)
        m = (air.ts >= lo) & (air.ts < lo + 86400)
        keep = m & (dev != 0)
        got = figures(air.ts[keep], dev[keep], air.rssi[keep], lo, rules)
        oracle = figures(air.ts[m], air.pid[m].astype(np.uint64) + np.uint64(1), air.rssi[m], lo, rules)
        out.append(DayResult(day, truth.day(air, day, rules.min_dwell_s, rules.passerby_rssi), got, oracle,
                             {"linked_seq": ident.stats.linked_seq, "linked_timing": ident.stats.linked_timing}))
    return out


# ---------------------------------------------------------------------------------------------------------------
# real phones staged together


@dataclass(frozen=True)
class SceneResult:
    name: str
    phones: int  #: phones heard in the scene (the truth: every one is a visitor, nobody passes by)
    macs: int  #: distinct MACs (naive counting)
    devices: int  #: keliu's estimated devices
    visitors: int
    passersby: int

    def row(self) -> dict[str, Any]:
        return {"scene": self.name, "phones": self.phones, "macs": self.macs, "devices": self.devices,
                "visitors": self.visitors, "passersby": self.passersby}


def scene(name: str, probes: list[Any], phones: int, policy: PrivacyPolicy | None = None) -> SceneResult:
    """Identify ``probes`` (:class:`sensor.frames.Probe`, in time order; several real phones, each present the whole
    time) and count them with the default definitions; the store is open around the clock (a lab scene)."""
    from sensor.frames import ProbeBatch

    probes = sorted(probes, key=lambda p: p.ts)
    ident = Identifier(MASTER, policy or PrivacyPolicy())
    ids = ident.identify_batch(ProbeBatch.from_probes(probes))
    codes = np.array([0 if d is None else int(d, 16) for d in ids.tolist()], np.uint64)
    ts = np.array([p.ts for p in probes])
    rssi = np.array([-100 if p.rssi is None else p.rssi for p in probes], np.int64)
    rules = Rules(open_hour=0, close_hour=24)
    day0 = float(np.floor((ts[0] + 8 * 3600) / 86400) * 86400 - 8 * 3600)
    f = figures(ts, codes, rssi, day0, rules)
    return SceneResult(name, phones, len({p.mac for p in probes}), len(set(codes.tolist()) - {0}),
                       int(f["visitors"]), int(f["passersby"]))


def staged(captures: list[list[Any]], start: float, stagger_s: float = 0.0) -> list[Any]:
    """Real single-phone captures staged together: each shifted to start at ``start + i * stagger_s``."""
    out = []
    for i, probes in enumerate(captures):
        if not probes:
            continue
        shift = start + i * stagger_s - min(p.ts for p in probes)
        out += [p._replace(ts=p.ts + shift) for p in probes]
    return out
