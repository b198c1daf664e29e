"""Sensor placement: the strongest devices' signal, and the store's ``visit_rssi``/``stay_rssi`` from a walk (pure).

``keliu sensor calibrate`` (sensor/cli.py, the edge) feeds every probe's device id (keyed, never a MAC), time and
signal into a :class:`Board`, shows its :meth:`Board.top` live while a technician walks in and out of the store with
a phone (Wi-Fi settings open, so that it probes every few seconds), and at the end asks :func:`suggest` for the
thresholds from the signal of the walking phone: the device heard most often among the strongest (or the one named).

The walk gives two groups of readings: the phone inside the store (strong) and outside it, in front of the window or
in the mall's aisle (weak). :func:`suggest` splits them where the two groups are best separated (Otsu's threshold:
the split that maximises the between-group variance) and puts ``visit_rssi`` (a visit starts at or above it)
towards the inside group and ``stay_rssi`` (a visit goes on at or above it) a hysteresis below it, never into the
outside group's usual range. Too few readings, or two groups that overlap, give no suggestion but a reason: move the
sensor deeper into the store, away from the window and the aisle.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: readings needed on each side of the split before a suggestion is made
MIN_SIDE = 8
#: the default hysteresis between visit_rssi and stay_rssi (analytics: -65 and -70)
HYSTERESIS = 5
#: inside and outside must be this many dB apart (10th percentile inside vs 90th outside) to tell them apart
MIN_SEPARATION = 3


@dataclass
class Track:
    """One device's readings (epoch seconds, dBm)."""

    device: str
    readings: list[tuple[float, int]] = field(default_factory=list)

    @property
    def last(self) -> int:
        return self.readings[-1][1]

    @property
    def strongest(self) -> int:
        return max(r for _t, r in self.readings)


@dataclass(frozen=True)
class Row:
    """A line of the live table."""

    device: str
    last: int
    strongest: int
    median: float
    count: int
    seen_s_ago: float


class Board:
    """Every device's signal over the session (devices by keyed id)."""

    def __init__(self) -> None:
        self.tracks: dict[str, Track] = {}

    def add(self, ts: float, device: str, rssi: int | None) -> None:
        if rssi is None:
            return
        self.tracks.setdefault(device, Track(device)).readings.append((ts, int(rssi)))

    def top(self, n: int, now: float, window_s: float = 60.0) -> list[Row]:
        """The ``n`` devices with the strongest signal heard in the last ``window_s`` seconds, strongest first."""
        rows = []
        for t in self.tracks.values():
            recent = [r for ts, r in t.readings if ts >= now - window_s]
            if not recent:
                continue
            rows.append(Row(t.device, t.last, max(recent), _median([r for _t, r in t.readings]), len(t.readings),
                            max(0.0, now - t.readings[-1][0])))
        rows.sort(key=lambda r: (-r.strongest, -r.count, r.device))
        return rows[:n]

    def walker(self, candidates: int = 5) -> str | None:
        """The phone being walked: among the ``candidates`` strongest devices, the one heard most often."""
        strong = sorted(self.tracks.values(), key=lambda t: (-t.strongest, t.device))[:candidates]
        if not strong:
            return None
        return max(strong, key=lambda t: (len(t.readings), t.strongest)).device

    def readings(self, device: str) -> list[int]:
        t = self.tracks.get(device)
        return [] if t is None else [r for _ts, r in t.readings]


@dataclass(frozen=True)
class Suggestion:
    visit_rssi: int
    stay_rssi: int
    #: the readings inside and outside as the split saw them: (count, 10th percentile / 90th percentile)
    inside: tuple[int, int]
    outside: tuple[int, int]
    split: float


@dataclass(frozen=True)
class NoSuggestion:
    reason: str


def _median(values: Sequence[int]) -> float:
    s = sorted(values)
    n = len(s)
    return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def percentile(values: Sequence[int], q: float) -> int:
    """The ``q`` (0-1) percentile by the nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def otsu(values: Sequence[int]) -> float:
    """The threshold between two groups of readings that maximises the between-group variance; readings above it
    (strictly) form the upper group."""
    s = sorted(values)
    n = len(s)
    total = sum(s)
    best, split, acc = -1.0, float(s[0]), 0
    for i in range(1, n):
        acc += s[i - 1]
        if s[i] == s[i - 1]:
            continue
        w0, w1 = i / n, (n - i) / n
        m0, m1 = acc / i, (total - acc) / (n - i)
        between = w0 * w1 * (m0 - m1) ** 2
        if between > best:
            best, split = between, (s[i - 1] + s[i]) / 2.0
    return split


def suggest(readings: Sequence[int], passerby_rssi: int = -90) -> Suggestion | NoSuggestion:
    """``visit_rssi`` and ``stay_rssi`` from one phone's readings while walked in and out of the store."""
    if len(readings) < 2 * MIN_SIDE:
        return NoSuggestion(f"only {len(readings)} readings of the phone; walk in and out again "
                            f"(at least {2 * MIN_SIDE}, with its Wi-Fi settings open)")
    split = otsu(readings)
    inside = [r for r in readings if r > split]
    outside = [r for r in readings if r <= split]
    if len(inside) < MIN_SIDE or len(outside) < MIN_SIDE:
        side = "inside" if len(inside) < MIN_SIDE else "outside"
        return NoSuggestion(f"too few readings {side} the store ({min(len(inside), len(outside))}); "
                            f"stay {side} longer")
    lo_in, hi_out = percentile(inside, 0.10), percentile(outside, 0.90)
    if lo_in - hi_out < MIN_SEPARATION:
        return NoSuggestion(f"inside (10th percentile {lo_in} dBm) and outside (90th percentile {hi_out} dBm) overlap: "
                            "the sensor hears the aisle or the window as well as the shop; move it deeper into the "
                            "store, away from the entrance, and walk again")
    # visit_rssi: above the outside group's usual range, below most inside readings; stay_rssi: the hysteresis
    # below it, but still above the outside group's usual range
    visit = min(lo_in, math.ceil((lo_in + hi_out) / 2) + 1)
    stay = max(hi_out + 1, visit - HYSTERESIS)
    stay = max(stay, passerby_rssi)
    return Suggestion(visit, min(stay, visit), (len(inside), lo_in), (len(outside), hi_out), split)
