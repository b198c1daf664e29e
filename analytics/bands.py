"""Error bands and bases of the reported figures (pure; docs/METRICS.md, "Error bands").

keliu counts *estimated devices*: the sensor links a phone's rotating MACs (``sensor.grouping``), and every count
carries the linker's errors, which depend on how the phones in the crowd randomize. The bands here come from
calibration: ``bench/accuracy.py`` runs the sensor and analytics with the default configuration on the simulated
store days of ``keliu.testing.crowd`` (presets ``none``, ``half``, ``all_reset``, ``native``; seed 1, two days
each) and records, per metric, the smallest and largest ratio truth / reported (capture rate: truth − reported).
A band is the reported value mapped through that range, widened by a margin for what the calibration days did not
show (``MARGIN``); it says "in every calibration scenario the truth lay inside this range", nothing stronger.

Median dwell: each visit's dwell is edge-corrected in ``analytics.visits`` (the time a visit's first and last
sightings miss, from the phone's own scan cadence), so where the linker holds a phone's MACs together the reported
median estimates the true one (``none`` and ``half``: within 10 %). Where it does not (every phone rotating, per-scan
iPhones) the visits are fragments and the median stays low; the band's upper end says how much. The band is the
only correction for that: a constant factor would not know the store's mix of phones. ``median_dwell_est_s`` is
kept for the API's shape and equals ``median_dwell_s`` (it used to be the reported median times a calibrated 1.46).

The dwell's band widens with the crowd: the more phones of one model in range, the more of their rotations the
linker cannot follow, and the shorter the fragments (a mall's crowd: truth / reported 2.32, against at most 1.74
on store-sized days). ``CROWD`` is that calibration, from ``bench/accuracy.py --crowd``'s mall evening; a report's
density is its busiest hour's devices (:func:`peak_hour`, from its hourly figures), and between the
store-sized days' and the crowd's the band's upper end follows its logarithm (measured at both ends and checked at
two densities between, docs/METRICS.md "Error bands"); past the crowd's it stays at the crowd's.

``tests/analytics/test_bands.py`` re-derives ``CALIBRATION`` and ``CROWD`` from fresh runs (they must match) and
checks that the bands cover the truth on other seeds and other crowds.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

#: per metric: (lowest, highest) of truth / reported over the calibration days (capture rate: truth − reported).
#: Produced by ``bench/accuracy.py`` (its ``calibration`` output), seed 1, default configuration.
CALIBRATION: dict[str, tuple[float, float]] = {
    "visitors": (0.987, 1.195),
    "passersby": (0.973, 1.018),
    "median_dwell_s": (0.987, 1.737),
    "capture_rate": (-0.001, 0.031),
}
#: the dwell at a crowd (``bench/accuracy.py --crowd``, seed 1: the mall's two evening hours, its busiest, about
#: 1,000 phones in range): the busiest hour's devices of the store-sized calibration days (the most of them) and of
#: the crowd, and the crowd's truth / reported median dwell (its other figures lie inside their store-sized bands;
#: the whole mall day, 3,989 devices in its busiest hour and 2.32, is the bench's check)
CROWD: dict[str, Any] = {"peak_hour": (229, 3234), "median_dwell_s": 2.346}
#: widening for what the calibration did not show, set from seed 2: relative for counts and dwell, absolute for
#: capture rate (seed 2's all_reset day 1 reads 13.7 % more visitors than the truth and a capture rate 0.020 above
#: it, where seed 1 reads at most 1.3 % more visitors and a capture rate 0.001 above); seed 3 checks the result
MARGIN = {"visitors": 0.15, "passersby": 0.12, "median_dwell_s": 0.10, "capture_rate": 0.025}

#: what each figure rests on: the sensor's linked devices (rotating MACs joined by evidence), or an estimate
BASIS = {"visitors": "linked_devices", "passersby": "linked_devices", "capture_rate": "linked_devices",
         "median_dwell_s": "linked_devices", "median_dwell_est_s": "linked_devices"}


class Bands(TypedDict):
    """``[low, high]`` per figure."""

    visitors: list[float]
    passersby: list[float]
    capture_rate: list[float]
    median_dwell_s: list[float]


class Uncertainty(TypedDict):
    """Added to a store's day or range report (alongside the figures, which stay as they were)."""

    #: equal to the report's ``median_dwell_s`` (kept for the API's shape); None: no visit, no data (never 0)
    median_dwell_est_s: float | None
    bands: Bands
    basis: dict[str, str]


def dwell_high(peak: float | None) -> float:
    """The highest truth / reported median dwell at a density of ``peak`` devices in the busiest hour (None: not
    known, the store-sized calibration's)."""
    hi = CALIBRATION["median_dwell_s"][1]
    p0, p1 = CROWD["peak_hour"]
    if peak is None or peak <= p0:
        return hi
    f = min(1.0, math.log(peak / p0) / math.log(p1 / p0))
    return hi + (float(CROWD["median_dwell_s"]) - hi) * f


def peak_hour(visitors: Sequence[int | None], passersby: Sequence[int | None], days: int = 1) -> float | None:
    """A report's density: its busiest hour's devices (visitors and passers-by of that hour, per hour of day;
    ``days``: how many days' hours were summed into them, the density is per day); None without any."""
    heard = [(v or 0) + (p or 0) for v, p in zip(visitors, passersby) if v is not None or p is not None]
    return max(heard) / max(1, days) if heard else None


def band(metric: str, value: float, peak: float | None = None) -> list[float]:
    """The calibrated band around a reported ``value`` of ``metric``; ``peak``: the report's density
    (:func:`peak_hour`), which widens the dwell's."""
    lo, hi = CALIBRATION[metric]
    if metric == "median_dwell_s":
        hi = dwell_high(peak)
    m = MARGIN[metric]
    if metric == "capture_rate":
        return [round(max(0.0, value + lo - m), 4), round(min(1.0, value + hi + m), 4)]
    return [round(value * lo * (1 - m), 1), round(value * hi * (1 + m), 1)]


def uncertainty(figures: Mapping[str, Any], peak: float | None = None) -> Uncertainty:
    """The estimate, bands and bases for a report's figures (``visitors``, ``passersby``, ``capture_rate``,
    ``median_dwell_s``; a figure that is None, no data, gets no band, and a figure the report does not have, such
    as a mall's median dwell, no basis either).

    ``figures`` may be sums (a range's days, a mall's stores, an operator's malls): when every summand's truth lies
    in its band, i.e. between ``lo`` and ``hi`` times its reported value, the sum's truth lies between ``lo`` and
    ``hi`` times the reported sum, so the sum's band is the same mapping of the sum (docs/METRICS.md, "Mall and
    operator"). It is no narrower than the summands' bands: the calibrated range is one for every store, and the
    errors of stores with the same mix of phones do not cancel. ``peak``: the report's density (:func:`peak_hour`;
    None: not known, as for a mall's totals, which have no median dwell), which widens the dwell's band."""
    bands: dict[str, list[float]] = {}
    for k in ("visitors", "passersby", "capture_rate", "median_dwell_s"):
        v = figures.get(k)
        if v is not None:
            bands[k] = band(k, float(v), peak)
    d = figures.get("median_dwell_s")
    return Uncertainty(median_dwell_est_s=float(d) if d is not None else None,
                       bands=bands,  # type: ignore[typeddict-item]
                       basis={k: b for k, b in BASIS.items() if k.replace("_est", "") in figures})


def calibrate(rows: list[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """``CALIBRATION`` from ``bench/accuracy.py``'s rows (``{metric: {"truth": t, "keliu": r}}`` each)."""
    out: dict[str, tuple[float, float]] = {}
    for k in ("visitors", "passersby", "median_dwell_s", "capture_rate"):
        if k == "capture_rate":
            vals = [r[k]["truth"] - r[k]["keliu"] for r in rows]
        else:
            vals = [r[k]["truth"] / r[k]["keliu"] for r in rows if r[k]["keliu"]]
        out[k] = (round(min(vals), 3), round(max(vals), 3))
    return out


def calibrate_crowd(store_rows: list[Mapping[str, Any]], crowd_rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``CROWD`` from ``bench/accuracy.py``'s rows: the store-sized days' and the crowd's (``peak_hour`` each)."""
    return {"peak_hour": (max(int(r["peak_hour"]) for r in store_rows), max(int(r["peak_hour"]) for r in crowd_rows)),
            "median_dwell_s": round(max(r["median_dwell_s"]["truth"] / r["median_dwell_s"]["keliu"]
                                        for r in crowd_rows), 3)}
