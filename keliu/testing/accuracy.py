"""Measuring the sensor → analytics path against a simulated crowd's truth (pure; used by bench/accuracy.py and
the accuracy tests).

:func:`measure` gives every frame of :mod:`keliu.testing.crowd`'s air its device id with the sensor's
:class:`sensor.grouping.Identifier` (default policy unless given: strict privacy, the linker on), reduces each day's
sightings to visits and the day's figures with analytics' own functions (default :class:`analytics.visits.Rules`),
and returns per day what keliu reports next to the truth and next to an *oracle* (the same analytics with perfect
de-randomization: each phone one device), which separates the linker's error from the definitions' own.

With the joins of :mod:`keliu.testing.guestwifi` (visitors who join the guest Wi-Fi), their association frames are
heard with the crowd's and identified by the same :class:`sensor.grouping.Identifier`, and each day also gets what
the report's ``connected`` block makes of them: the station list's visits (:func:`analytics.metrics.connected_day`)
and the calibration of the pairs (probe device, station id) of the association requests
(:func:`analytics.calibration.pair_day`, :func:`analytics.calibration.calibration`), keyed as the sensor keys them
(:func:`sensor.stations.station_device`, the function ``sensor.pipeline`` gives ``sensor.sightings``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.calibration import Calibration, PairDay, calibration, pair_day
from analytics.metrics import ConnectedDay, StoreDay, connected_day, store_day
from analytics.visits import Rules, summarize
from keliu.testing.crowd import Air, Truth
from keliu.testing.guestwifi import KIND_PROBE, Joins
from sensor.grouping import Identifier
from sensor.identity import PrivacyPolicy
from sensor.stations import station_device

MASTER = bytes(range(32))


@dataclass(frozen=True)
class DayResult:
    day: int
    truth: dict[str, float]
    got: dict[str, float]
    oracle: dict[str, float]
    link: dict[str, int]
    connected: Connected | None = None  #: with joins only


@dataclass(frozen=True)
class Connected:
    """A day's connected phones as the report sees them, and their truth."""

    day: ConnectedDay
    pairs: PairDay
    calibration: Calibration | None
    truth_dwell_s: np.ndarray  #: the exact associated time of the day's sessions


def identify(air: Air, policy: PrivacyPolicy | None = None, chunk: int = 65536) -> tuple[np.ndarray, Identifier]:
    """Device ids (uint64 codes; 0 = dropped) of every frame, through the sensor's identifier in chunks."""
    ident = Identifier(MASTER, policy or PrivacyPolicy())
    out = np.zeros(len(air), np.uint64)
    for i in range(0, len(air), chunk):
        ids = ident.identify_batch(air.batch(i, min(len(air), i + chunk)))
        out[i:i + len(ids)] = np.array([0 if d is None else int(d, 16) for d in ids.tolist()], np.uint64)
    return out, ident


def day_of(ts: np.ndarray, device: np.ndarray, rssi: np.ndarray, day_start: float, rules: Rules) -> StoreDay:
    """The store-day analytics makes of these sightings (visits, staff, rollups)."""
    start_ms = round(day_start * 1000)
    ms = np.round(ts * 1000).astype(np.int64)
    return store_day(summarize(ms, device, rssi.astype(np.int16), rules, start_ms), rules, start_ms)


def summary(sd: StoreDay, device: np.ndarray) -> dict[str, Any]:
    """The day's figures of ``sd`` (``device``: the ids of its sightings)."""
    (r,) = sd.rollup("1d")
    return {"visitors": r.visitors, "passersby": r.passersby, "median_dwell_s": float(r.median_dwell_s),
            "capture_rate": float(r.capture_rate), "phones": len(np.unique(device)),
            "staff": int(r.staff_excluded), "dwell_s": sd.visits.dwell_ms[~sd.visit_staff] / 1000.0,
            # the busiest hour's devices, as the report's hourly figures read (analytics.bands.peak_hour)
            "peak_hour": max((h.visitors + h.passersby for h in sd.rollup("1h")), default=0)}


def figures(ts: np.ndarray, device: np.ndarray, rssi: np.ndarray, day_start: float, rules: Rules) -> dict[str, Any]:
    return summary(day_of(ts, device, rssi, day_start, rules), device)


def _station_codes(ident: Identifier, mac: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The station id (uint64 code; 0 = dropped) of each address at its time, as the sensor and the AP's station
    list key it; keyed once per address and period."""
    out = np.zeros(len(mac), np.uint64)
    cache: dict[tuple[int, int], int] = {}
    for i, (m, t) in enumerate(zip(mac.tolist(), ts.tolist())):
        k = (m, ident.policy.period(t))
        if k not in cache:
            d = station_device(m.to_bytes(6, "big"), t, ident.master, ident.policy, ident.registry, ident.ignore)
            cache[k] = 0 if d is None else int(d, 16)
        out[i] = cache[k]
    return out


def connected(air: Air, dev: np.ndarray, ident: Identifier, joins: Joins, sd: StoreDay, lo: float,
              rules: Rules) -> Connected:
    """The day [lo, lo + 1 day) of the joined phones: the station list's visits, the pairs of the association
    requests heard (their probe device ``dev``, their address's station id) and their calibration against the
    day's probe-based visits (``sd``, staff left out, as the report reads the stored visits)."""
    hi = lo + 86400
    start_ms = round(lo * 1000)
    p = (joins.poll_ts >= lo) & (joins.poll_ts < hi)
    codes = _station_codes(ident, joins.poll_mac[p], joins.poll_ts[p])
    keep = codes != 0
    cday = connected_day(np.round(joins.poll_ts[p][keep] * 1000).astype(np.int64), codes[keep], rules, start_ms)
    assoc = np.zeros(len(air), bool) if air.kind is None else air.kind != KIND_PROBE
    a = assoc & (air.ts >= lo) & (air.ts < hi) & (dev != 0)
    st = _station_codes(ident, air.mac[a], air.ts[a])
    ok = st != 0
    shoppers = ~sd.visit_staff
    pairs = pair_day(dev[a][ok], st[ok], sd.visits.device[shoppers], sd.visits.dwell_ms[shoppers], cday.device,
                     cday.dwell_ms)
    return Connected(cday, pairs, calibration([pairs]), joins.truth_dwell_s(lo, hi))


def measure(air: Air, truth: Truth, policy: PrivacyPolicy | None = None, rules: Rules | None = None,
            joins: Joins | None = None) -> list[DayResult]:
    """Per day of ``truth``: the truth, keliu's figures and the oracle's; with ``joins``, their association frames
    are heard too and each day has its :class:`Connected`."""
    rules = rules or Rules()
    if joins is not None:
        air = joins.heard(air)
    dev, ident = identify(air, policy)
    out = []
    for day in range(truth.scenario.days):
        lo = truth.scenario.day_start(day)
        m = (air.ts >= lo) & (air.ts < lo + 86400)
        keep = m & (dev != 0)
        sd = day_of(air.ts[keep], dev[keep], air.rssi[keep], lo, rules)
        got = summary(sd, dev[keep])
        oracle = figures(air.ts[m], air.pid[m].astype(np.uint64) + np.uint64(1), air.rssi[m], lo, rules)
        conn = None if joins is None else connected(air, dev, ident, joins, sd, lo, rules)
        out.append(DayResult(day, truth.day(air, day, rules.min_dwell_s, rules.passerby_rssi), got, oracle,
                             {"linked_seq": ident.stats.linked_seq, "linked_timing": ident.stats.linked_timing},
                             conn))
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
