"""Connected stations calibrate the probe-based estimates: a day's station pairs in, a ``calibration`` block out
(pure; docs/METRICS.md, "Connected shoppers calibrate the estimates").

A phone connected to the store's AP shows twice: as an exact connected station (its per-network address keyed,
``sensor.stations``) and among the probe-based devices under the id the sensor's linker gave it. When the sensor
hears the phone's association request it stores, next to that device, the station id of the same address
(``Sighting.station``), which makes a *pair* (probe device D, station S) of one phone on one day. For every paired
station that made a connected visit (staff left out) this module compares what the probe path made of that phone
with what it exactly did:

* **detection**: did the estimates count D as a visitor (a visit, not staff)? The rate over the pairs, with a
  Wilson 95 % interval, is the share of connected shoppers the probe-based visitor count includes;
* **dwell ratio**: D's probe-based dwell of the day (its visits' dwell, edge-corrected) over S's exact connected
  dwell of the day, for the detected pairs; the median with a distribution-free 95 % interval (order statistics).

Nothing here is applied to the headline figures: it is reported beside them. The sample is the connected phones
whose association the sensor heard, not the store's shoppers at large (phones that never connect to the guest
Wi-Fi, or connect out of the sensor's earshot, are not in it); on the simulator's guest Wi-Fi joins
(``bench/accuracy.py``) dividing the median dwell by the dwell ratio does not bring the fragmented scenarios closer
and pushes the others low (docs/METRICS.md, "Connected shoppers", *What it does not do*).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from analytics.visits import I64, U64

CALIBRATION_BASIS = "station_pairs"
#: fewer pairs than this give no calibration (None): with ten, the median's 95 % interval runs from the second
#: smallest ratio to the second largest
MIN_PAIRS = 10
_Z = 1.959963984540054  # the normal 97.5 % quantile


class Calibration(TypedDict):
    """The ``calibration`` block under a report's ``connected`` block (None: fewer than :data:`MIN_PAIRS` pairs)."""

    basis: str  #: always :data:`CALIBRATION_BASIS`
    min_pairs: int
    pairs: int  #: connected visitors whose probe-based device is known (through their association)
    detected: int  #: ... of which the estimates counted as visitors
    detection_rate: float
    detection_band: list[float]  #: Wilson 95 % interval
    #: median over the detected pairs of probe-based dwell / exact connected dwell; None below MIN_PAIRS of them
    dwell_ratio: float | None
    dwell_ratio_band: list[float] | None  #: 95 % interval of that median (order statistics)


@dataclass(frozen=True, eq=False)
class PairDay:
    """One day's paired connected visitors, one row per station: whether the estimates counted its phone, and the
    two dwells (ms) of the day (the probe one 0 when not counted)."""

    station: U64
    detected: npt.NDArray[np.bool_]
    probe_dwell_ms: I64
    connected_dwell_ms: I64


def _per_device(device: U64, dwell_ms: I64) -> tuple[U64, I64]:
    uniq, inv = np.unique(device, return_inverse=True)
    return uniq, np.bincount(inv, weights=dwell_ms, minlength=len(uniq)).astype(np.int64)


def _lookup(keys: U64, values: I64, wanted: U64) -> I64:
    """``values`` of ``wanted`` in sorted unique ``keys`` (0 where absent)."""
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[pos] == wanted, values[pos], 0)


def pair_day(pair_device: U64, pair_station: U64, probe_device: U64, probe_dwell_ms: I64, station_device: U64,
             station_dwell_ms: I64) -> PairDay:
    """The day's paired connected visitors.

    ``pair_device``/``pair_station``: the day's pairs (probe device, station), any order, repeats allowed (every
    association sighting makes one); ``probe_*``: the estimates' visits of the day, staff left out; ``station_*``:
    the connected visits of the day, staff left out (:class:`analytics.metrics.ConnectedDay`). A station whose
    associations went to several probe devices (the linker lost the phone between them) has the union of their
    visits; a station without a connected visit is no pair."""
    pairs = np.unique(np.stack([pair_station, pair_device], axis=1), axis=0) if len(pair_device) else (
        np.zeros((0, 2), dtype=np.uint64))
    s_dev, s_dwell = _per_device(station_device, station_dwell_ms)
    p_dev, p_dwell = _per_device(probe_device, probe_dwell_ms)
    keep = np.isin(pairs[:, 0], s_dev)
    pairs = pairs[keep]
    dwell = _lookup(p_dev, p_dwell, pairs[:, 1])
    stations, inv = np.unique(pairs[:, 0], return_inverse=True)
    probe = np.bincount(inv, weights=dwell, minlength=len(stations)).astype(np.int64)
    counted = np.bincount(inv, weights=np.isin(pairs[:, 1], p_dev), minlength=len(stations)) > 0
    return PairDay(stations, counted, probe, _lookup(s_dev, s_dwell, stations))


def wilson(k: int, n: int) -> list[float]:
    """The Wilson 95 % interval of a proportion ``k`` of ``n`` (n > 0)."""
    p = k / n
    centre = (p + _Z * _Z / (2 * n)) / (1 + _Z * _Z / n)
    half = _Z * math.sqrt(p * (1 - p) / n + _Z * _Z / (4 * n * n)) / (1 + _Z * _Z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def median_band(values: npt.NDArray[np.float64]) -> list[float]:
    """A distribution-free interval of the median of ``values`` with at least 95 % coverage: the k-th smallest
    and k-th largest, k the largest with P(Binomial(n, 1/2) < k) ≤ 2.5 % (n ≥ 6; else the whole range)."""
    x = np.sort(values)
    n = len(x)
    k, tail = 0, 0.0
    while k < n:
        tail += math.comb(n, k) / 2.0 ** n
        if tail > 0.025:
            break
        k += 1
    k = max(k, 1)
    return [float(x[k - 1]), float(x[n - k])]


def calibration(days: list[PairDay], min_pairs: int = MIN_PAIRS) -> Calibration | None:
    """The calibration over ``days`` (a store's day, or a range's days), or None below ``min_pairs`` pairs."""
    detected = np.concatenate([d.detected for d in days]) if days else np.zeros(0, dtype=bool)
    n = len(detected)
    if n < min_pairs:
        return None
    k = int(detected.sum())
    probe = np.concatenate([d.probe_dwell_ms for d in days])[detected].astype(np.float64)
    exact = np.concatenate([d.connected_dwell_ms for d in days])[detected].astype(np.float64)
    ratios = probe / exact
    ratio: float | None = None
    band: list[float] | None = None
    if len(ratios) >= min_pairs:
        ratio = round(float(np.median(ratios)), 3)
        band = [round(v, 3) for v in median_band(ratios)]
    return Calibration(basis=CALIBRATION_BASIS, min_pairs=min_pairs, pairs=n, detected=k,
                       detection_rate=round(k / n, 4), detection_band=wilson(k, n), dwell_ratio=ratio,
                       dwell_ratio_band=band)
