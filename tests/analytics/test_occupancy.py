"""Live occupancy (analytics.occupancy): who is inside right now, as a table of sightings → states."""
from __future__ import annotations

import numpy as np
import pytest

from analytics.bands import band
from analytics.metrics import History, known_staff
from analytics.occupancy import Present, figures, lookback_s, present, union
from analytics.visits import Rules, device_codes
from tests.analytics.builders import DAY_START, arrays, dev, tsighting

RULES = Rules()  # passer-by -90, visit -65, stay -70, min dwell 300 s, gap 900 s
NOW = 15 * 3600.0  # seconds after the test day's midnight
NOW_MS = round((DAY_START + NOW) * 1000)


def every(device: str, start: float, end: float, rssi: int, step: float = 60.0) -> list[tuple[float, str, int]]:
    """Sightings of ``device`` from ``start`` to ``end`` (seconds relative to now, both ends included)."""
    n = int((end - start) // step)
    return [(start + i * step, device, rssi) for i in range(n + 1)]


# (case, sightings as (seconds relative to now, device, rssi), inside, staying, nearby)
CASES = [
    ("entered two minutes ago", [(-120, "a", -60)], {"a"}, set(), set()),
    ("inside for eight minutes: staying", every("a", -480, 0, -60), {"a"}, {"a"}, set()),
    ("entered at the edge of the window", [(-600, "a", -60)], {"a"}, set(), set()),
    ("left eleven minutes ago", [(-660, "a", -60)], set(), set(), set()),
    ("heard weakly: a passer-by now", [(-100, "b", -80)], set(), set(), {"b"}),
    ("below the passer-by threshold", [(-100, "c", -95)], set(), set(), set()),
    ("a missing signal never counts", [(-100, "c", -100)], set(), set(), set()),
    ("at stay level but never entered", every("d", -300, 0, -68), set(), set(), {"d"}),
    ("entered 20 min ago, at stay level since", [(-1200, "e", -60)] + every("e", -1140, 0, -68), {"e"}, {"e"},
     set()),
    ("entered before the look-back, at stay level since (missed, documented)",
     [(-1560, "f", -60)] + every("f", -1440, 0, -68), set(), set(), {"f"}),
    ("a gap longer than the visit gap starts a new run", [(-1400, "g", -60), (-300, "g", -68)], set(), set(),
     {"g"}),
    ("stepped outside after entering: inside until the window passes", [(-300, "h", -60), (-60, "h", -85)],
     {"h"}, set(), set()),
    ("a sighting stamped after now is not counted", [(30, "i", -60)], set(), set(), set()),
    ("a crowd", [(-60, "a", -60), (-50, "b", -55), (-40, "c", -80), (-30, "d", -88), (-20, "e", -92)],
     {"a", "b"}, set(), {"c", "d"}),
]


def tpresent(rows: list[tuple[float, str, int]], staff: list[str] | None = None, now_ms: int = NOW_MS) -> Present:
    batch = [tsighting(NOW + t, d, None if r == -100 else r) for t, d, r in rows]
    ts, devs, rssi = arrays(batch) if batch else (np.zeros(0, np.int64), np.zeros(0, np.uint64),
                                                  np.zeros(0, np.int16))
    return present(ts, devs, rssi, RULES, now_ms, 600, device_codes([dev(s) for s in staff or []]))


def codes(names: set[str]) -> np.ndarray:
    return np.unique(device_codes([dev(n) for n in names]))


@pytest.mark.parametrize(("case", "rows", "inside", "staying", "nearby"), CASES, ids=[c[0] for c in CASES])
def test_who_is_inside_now(case: str, rows: list[tuple[float, str, int]], inside: set[str], staying: set[str],
                           nearby: set[str]) -> None:
    p = tpresent(rows)
    assert p == Present(codes(inside), codes(staying), codes(nearby), codes(set())), case


def test_nothing_heard() -> None:
    assert tpresent([]) == Present(codes(set()), codes(set()), codes(set()), codes(set()))


def test_staff_are_in_no_figure_and_counted_apart() -> None:
    rows = every("a", -480, 0, -60) + [(-60, "b", -60), (-30, "s", -80)]
    p = tpresent(rows, staff=["a", "s"])
    assert p == Present(codes({"b"}), codes(set()), codes(set()), codes({"a"}))


def test_the_look_back_is_the_window_plus_one_gap() -> None:
    assert lookback_s(RULES, 600) == 1500
    assert lookback_s(Rules(visit_gap_s=300), 120) == 420


def test_a_mall_counts_each_shopper_once() -> None:
    s1 = tpresent([(-60, "a", -60), (-60, "b", -80), (-50, "c", -60)] + every("d", -400, 0, -60))
    s2 = tpresent([(-60, "a", -80), (-60, "b", -85), (-50, "c", -55), (-40, "e", -82)])
    m = union([s1, s2])
    assert m == Present(codes({"a", "c", "d"}), codes({"d"}), codes({"b", "e"}), codes(set()))
    assert union([]) == Present(codes(set()), codes(set()), codes(set()), codes(set()))


def test_figures_carry_the_visitor_band_and_basis() -> None:
    p = tpresent(every("a", -480, 0, -60) + [(-60, "b", -60), (-60, "c", -80)], staff=[])
    now = DAY_START + NOW
    out = figures(p, now=now, window_s=600, last_sighting=now - 12.34)
    assert out == {"as_of": now, "window_s": 600, "occupancy": 2, "staying": 1, "nearby": 1, "staff_excluded": 0,
                   "band": band("visitors", 2.0), "basis": "linked_devices", "connected": 0,
                   "last_sighting_age_s": 12.3}
    assert out["band"][0] <= 2 <= out["band"][1] and out["band"][0] < out["band"][1]
    empty = figures(tpresent([]), now=now, window_s=600, last_sighting=None)
    assert (empty["occupancy"], empty["band"], empty["last_sighting_age_s"]) == (0, [0.0, 0.0], None)


def test_connected_stations_are_counted_apart_and_exactly() -> None:
    rows = [(-60, "a", -60), (-30, "c", -80)]
    conn = device_codes([dev("w1"), dev("w2"), dev("w1"), dev("s")])
    p = present(*_arrays(rows), RULES, NOW_MS, 600, device_codes([dev("s")]), conn)
    assert p.connected.tolist() == codes({"w1", "w2"}).tolist()  # staff dropped, each station once
    assert (len(p.inside), len(p.nearby)) == (1, 1)  # the probe-based figures are unchanged
    out = figures(p, now=DAY_START + NOW, window_s=600, last_sighting=None)
    assert (out["occupancy"], out["connected"]) == (1, 2)
    # nothing heard by the sensor, two phones on the Wi-Fi: still two connected
    empty = present(np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int16), RULES, NOW_MS, 600,
                    device_codes([dev("s")]), conn)
    assert (len(empty.inside), len(empty.connected)) == (0, 2)
    other = present(*_arrays([(-10, "b", -60)]), RULES, NOW_MS, 600, None, device_codes([dev("w2"), dev("w3")]))
    assert union([p, other]).connected.tolist() == codes({"w1", "w2", "w3"}).tolist()


def _arrays(rows: list[tuple[float, str, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return arrays([tsighting(NOW + t, d, r) for t, d, r in rows])


@pytest.mark.parametrize(("ages", "manual", "is_staff"), [
    ([1, 2, 3, 4], [], True),          # flagged on 4 of the last 7 days (staff_days = 4)
    ([1, 2, 3], [], False),            # 3 days are not enough
    ([1, 2, 3, 9], [], False),         # the fourth is older than a week
    ([], ["x"], True),                 # the manual list
])
def test_known_staff(ages: list[int], manual: list[str], is_staff: bool) -> None:
    code = device_codes([dev("x")])
    hist = History(staff_device=np.repeat(code, len(ages)), staff_age=np.array(ages, dtype=np.int64))
    rules = Rules(staff_devices=tuple(dev(m) for m in manual))
    assert bool(np.isin(code, known_staff(hist, rules)).all()) is is_staff
