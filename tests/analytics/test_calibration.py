"""Connected stations calibrate the probe-based estimates (pure): the day's pairs → one row per paired connected
visitor → detection rate and dwell ratio with their intervals, None below the minimum of pairs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.calibration import MIN_PAIRS, PairDay, calibration, median_band, pair_day, wilson

MIN = 60_000


def u64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_one_row_per_paired_connected_visitor() -> None:
    day = pair_day(
        # pairs (device, station), one per association sighting: S1's phone associated twice under D1, S2's under
        # D2 and then (the linker lost it) under D3, S3's under D4, S4 (no connected visit) under D5
        pair_device=u64(1, 1, 2, 3, 4, 5), pair_station=u64(11, 11, 12, 12, 13, 14),
        # the estimates' visits (staff left out): D1 twice, D2 and D3 once each; D4 none (not counted)
        probe_device=u64(1, 1, 2, 3, 9), probe_dwell_ms=i64(10 * MIN, 5 * MIN, 20 * MIN, 4 * MIN, 50 * MIN),
        station_device=u64(11, 12, 13, 15), station_dwell_ms=i64(20 * MIN, 30 * MIN, 8 * MIN, 9 * MIN))
    assert day.station.tolist() == [11, 12, 13]
    assert day.detected.tolist() == [True, True, False]
    assert day.probe_dwell_ms.tolist() == [15 * MIN, 24 * MIN, 0]
    assert day.connected_dwell_ms.tolist() == [20 * MIN, 30 * MIN, 8 * MIN]


def test_a_station_with_two_visits_compares_its_day() -> None:
    day = pair_day(u64(1), u64(11), u64(1), i64(50 * MIN), u64(11, 11), i64(20 * MIN, 20 * MIN))
    assert (day.probe_dwell_ms.tolist(), day.connected_dwell_ms.tolist()) == ([50 * MIN], [40 * MIN])


def test_no_pairs() -> None:
    day = pair_day(u64(), u64(), u64(1), i64(MIN), u64(11), i64(MIN))
    assert len(day.station) == 0 and calibration([day]) is None


def tday(ratios: list[float], missed: int = 0) -> PairDay:
    """A day of paired visitors: one detected per ratio (connected dwell 10 min), then ``missed`` not counted."""
    n = len(ratios) + missed
    exact = np.full(n, 10 * MIN, dtype=np.int64)
    probe = np.array([round(r * 10 * MIN) for r in ratios] + [0] * missed, dtype=np.int64)
    return PairDay(np.arange(n, dtype=np.uint64), np.array([True] * len(ratios) + [False] * missed), probe, exact)


def test_below_the_minimum_there_is_no_calibration() -> None:
    assert calibration([tday([1.0] * (MIN_PAIRS - 2), missed=1)]) is None
    assert calibration([]) is None


def test_detection_and_dwell_ratio_over_days() -> None:
    ratios = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    out = calibration([tday(ratios[:6], missed=2), tday(ratios[6:], missed=1)])
    assert out is not None
    assert (out["basis"], out["pairs"], out["detected"], out["min_pairs"]) == ("station_pairs", 14, 11, MIN_PAIRS)
    assert out["detection_rate"] == round(11 / 14, 4)
    assert out["detection_band"] == wilson(11, 14)
    assert out["dwell_ratio"] == 1.0
    # n = 11: P(B ≤ 1) = 12/2048 ≤ 2.5 % < P(B ≤ 2) = 67/2048, so the 2nd smallest and the 2nd largest
    assert out["dwell_ratio_band"] == [0.6, 1.4]


def test_enough_pairs_but_too_few_detected_for_a_dwell_ratio() -> None:
    out = calibration([tday([1.0, 1.2], missed=MIN_PAIRS)])
    assert out is not None and out["detected"] == 2
    assert (out["dwell_ratio"], out["dwell_ratio_band"]) == (None, None)


@pytest.mark.parametrize(("k", "n", "expected"), [
    (0, 10, [0.0, 0.2775]), (10, 10, [0.7225, 1.0]), (5, 10, [0.2366, 0.7634]), (40, 50, [0.6696, 0.8876])])
def test_wilson_interval(k: int, n: int, expected: list[float]) -> None:
    assert wilson(k, n) == expected


@pytest.mark.parametrize(("n", "k"), [(5, 1), (6, 1), (8, 1), (9, 2), (10, 2), (20, 6), (50, 18)])
def test_the_median_interval_is_the_kth_order_statistics(n: int, k: int) -> None:
    values = np.arange(1, n + 1, dtype=np.float64)[::-1].copy()  # any order
    assert median_band(values) == [float(k), float(n - k + 1)]
    # k is the largest whose tail P(B < k) is at most 2.5 % (n = 5: none is, the whole range)
    tail = sum(math.comb(n, j) for j in range(k)) / 2 ** n
    assert tail <= 0.025 or n < 6
    assert sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n > 0.025


def test_the_median_interval_covers_the_median_as_stated() -> None:
    rng = np.random.default_rng(7)
    cover = 0
    for _ in range(2000):
        lo, hi = median_band(rng.lognormal(0.0, 0.5, 15))
        cover += lo <= 1.0 <= hi
    assert cover / 2000 >= 0.95 - 0.01  # n = 15: 96.5 % exactly (k = 4)
