"""Sightings → visits (pure, vectorized with numpy): RSSI thresholds with hysteresis, minimum dwell, gap.

The definitions are in docs/METRICS.md. A day's sightings of one store are reduced to a :class:`DayState`: the
*runs* of inside sightings of every device (``stay_rssi`` and above, chained while gaps stay within
``visit_gap_s``; each remembers its first sighting at ``visit_rssi`` and above) and, per device heard at all, a
:class:`Seen` summary. Both are mergeable — min, max and bitwise or over a device's parts, and runs that come
within the gap of each other join — so ``merge(summarize(a), summarize(b)) == summarize(a + b)`` for any split of
the sightings into batches, in any order. The state also keeps the *marks*, the distinct seconds in which each
device was heard inside (a union merges them exactly): the scan cadence from which a visit's dwell adds the time
its first and last sightings missed (docs/METRICS.md, "Dwell"). :func:`visits` turns the final state into visits,
joining a device's runs across a silence its own slowest scan cadence explains (a phone with its screen off;
docs/METRICS.md, "Silences inside a visit") and keeping what lasted the minimum dwell: a function of the final
state, so the merge property holds for it too.

Times are integer milliseconds inside (``to_ms``), so equality never depends on floating-point order.
Device ids are unsigned 64-bit codes (:func:`device_codes`; the sensor's ids are 16 hex digits).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
NO_ENTER = np.iinfo(np.int64).max  #: a run that never reached the enter threshold
MISSING_RSSI = -100  #: a sighting without a signal value never qualifies
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Rules:
    """One store's definitions (docs/METRICS.md). Built by ``AnalyticsConfig.rules_for``."""

    passerby_rssi: int = -90
    visit_rssi: int = -65
    stay_rssi: int = -70
    min_dwell_s: int = 300
    visit_gap_s: int = 900
    open_hour: int = 10
    close_hour: int = 22
    staff_fraction: float = 0.6
    staff_days: int = 4
    history_days: int = 90
    staff_devices: tuple[str, ...] = ()

    def check(self) -> None:
        if self.stay_rssi > self.visit_rssi:
            raise ValueError(f"stay_rssi ({self.stay_rssi}) must not be above visit_rssi ({self.visit_rssi})")
        if self.passerby_rssi > self.stay_rssi:
            raise ValueError(f"passerby_rssi ({self.passerby_rssi}) must not be above stay_rssi ({self.stay_rssi})")
        if not 0 <= self.open_hour < self.close_hour <= 24:
            raise ValueError(f"opening hours must satisfy 0 <= open_hour < close_hour <= 24: "
                             f"{self.open_hour}-{self.close_hour}")

    @property
    def gap_ms(self) -> int:
        return self.visit_gap_s * 1000

    @property
    def min_dwell_ms(self) -> int:
        return self.min_dwell_s * 1000

    @property
    def open_ms(self) -> int:
        """How long after its last inside sighting a visit may still be continued: across a silence of at most
        ``visit_gap_s`` plus the slowest gap of the runs on either side (:func:`screen_off_joins`), which is itself
        at most ``visit_gap_s``."""
        return 2 * self.gap_ms


@dataclass(frozen=True, eq=False)
class Runs:
    """Runs of inside sightings, sorted by (device, start). ``enter`` is ``NO_ENTER`` when never strong."""

    device: U64
    start: I64
    end: I64
    enter: I64

    def __len__(self) -> int:
        return len(self.device)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Runs) and all(
            np.array_equal(getattr(self, f), getattr(other, f)) for f in ("device", "start", "end", "enter"))


@dataclass(frozen=True, eq=False)
class Seen:
    """One row per device heard (≥ ``passerby_rssi``), sorted by device: first and last time heard, and a bitmask
    of the day's hours (bit h = local hour h) in which it was heard inside."""

    device: U64
    first: I64
    last: I64
    hours: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.device)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Seen) and all(
            np.array_equal(getattr(self, f), getattr(other, f)) for f in ("device", "first", "last", "hours"))


@dataclass(frozen=True, eq=False)
class Marks:
    """The distinct seconds (epoch seconds, floored) in which each device was heard inside (≥ ``stay_rssi``), sorted
    by (device, second): a phone's scan cadence, at one-second resolution (the frames of one probe burst fall in one
    or two seconds). Mergeable: the marks of a union of batches are the union of their marks."""

    device: U64
    sec: I64

    def __len__(self) -> int:
        return len(self.device)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Marks) and all(
            np.array_equal(getattr(self, f), getattr(other, f)) for f in ("device", "sec"))


@dataclass(frozen=True)
class DayState:
    """Everything a store-day's metrics need from its sightings; mergeable (see the module docstring)."""

    runs: Runs
    seen: Seen
    marks: Marks


@dataclass(frozen=True, eq=False)
class Visits:
    """Visits sorted by (device, start); ``start`` is the first strong sighting, ``end`` the last inside one, and
    ``edge_ms`` the presence the sightings could not show before ``start`` and after ``end`` (the edge correction,
    docs/METRICS.md). A visit's dwell is ``end - start + edge_ms``."""

    device: U64
    start: I64
    end: I64
    edge_ms: I64

    def __len__(self) -> int:
        return len(self.device)

    @property
    def observed_ms(self) -> I64:
        """From the first strong sighting to the last inside one: what decides whether the run counts."""
        return self.end - self.start

    @property
    def dwell_ms(self) -> I64:
        return self.end - self.start + self.edge_ms

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Visits) and all(
            np.array_equal(getattr(self, f), getattr(other, f)) for f in ("device", "start", "end", "edge_ms"))


# -------------------------------------------------------------------------------------------------------------
# device ids

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


def device_codes(ids: Sequence[str]) -> U64:
    """Device ids → uint64 codes. The sensor's 16-hex-digit ids map to their value (vectorized); any other
    string to the first 8 bytes of its BLAKE2b digest (stable across processes, so stores and days agree)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = np.array(ids, dtype=object)
    lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
    out = np.empty(len(ids), dtype=np.uint64)
    hexlike = lengths == 16
    if hexlike.any():
        b = np.array(raw[hexlike].tolist(), dtype="S16").view(np.uint8).reshape(-1, 16)
        nib = _HEX[b]
        ok = (nib != 255).all(axis=1)
        shifts = np.arange(60, -4, -4, dtype=np.uint64)
        vals = (nib.astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)
        idx = np.flatnonzero(hexlike)
        out[idx[ok]] = vals[ok]
        hexlike[idx[~ok]] = False
    for i in np.flatnonzero(~hexlike):
        out[i] = int.from_bytes(hashlib.blake2b(str(raw[i]).encode(), digest_size=8).digest(), "big")
    return out


def device_hex(code: int) -> str:
    """The sensor's id of a code that came from a 16-hex-digit id."""
    return f"{int(code):016x}"


def to_ms(ts: npt.ArrayLike) -> I64:
    return np.rint(np.asarray(ts, dtype=np.float64) * 1000.0).astype(np.int64)


def rssi_values(rssi: Sequence[int | None] | npt.NDArray[np.generic]) -> npt.NDArray[np.int16]:
    """RSSI column with ``None`` (no signal field) as ``MISSING_RSSI``."""
    arr = np.asarray(rssi, dtype=object) if not isinstance(rssi, np.ndarray) else rssi
    if arr.dtype == object:
        arr = np.array([MISSING_RSSI if v is None else v for v in arr], dtype=np.int16)
    return arr.astype(np.int16, copy=False)


# -------------------------------------------------------------------------------------------------------------
# sightings → state


def empty_state() -> DayState:
    z = np.zeros(0, dtype=np.int64)
    u = np.zeros(0, dtype=np.uint64)
    return DayState(Runs(u, z, z, z), Seen(u, z, z, np.zeros(0, dtype=np.uint32)), Marks(u, z))


def _starts(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    return np.flatnonzero(mask)


_TS_BITS = 27  # 2**27 ms is 37 hours: a day and its margins


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier


def _ranks(device: U64) -> tuple[I64, U64]:
    """Dense ranks of the device codes in value order, and the sorted distinct codes: ``uniq[rank] == device``.

    numpy's argsort and searchsorted over 10 million codes each take seconds; a plain sort of the codes and an
    open-addressing hash table (Fibonacci hashing, linear probing, all rounds vectorized) take a fraction of that.
    """
    s = np.sort(device)
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    uniq = s[keep]
    del s, keep
    bits = max(4, int(len(uniq) * 4 - 1).bit_length())  # load factor at most 1/4
    size = 1 << bits
    shift = np.uint64(64 - bits)
    mask = size - 1
    occupied = np.zeros(size, dtype=bool)
    tab_key = np.zeros(size, dtype=np.uint64)
    tab_rank = np.zeros(size, dtype=np.int64)
    # insert the distinct codes: each round places, per free slot, one of the codes that hash there
    pending = np.arange(len(uniq))
    slot = (uniq * _GOLDEN) >> shift
    slot = slot.astype(np.int64)
    while len(pending):
        free = ~occupied[slot]
        cand, cslot = pending[free], slot[free]
        tab_rank[cslot] = cand  # among codes hashing to one free slot, the last write wins
        occupied[cslot] = True
        tab_key[cslot] = uniq[tab_rank[cslot]]
        placed = tab_key[slot] == uniq[pending]
        placed &= tab_rank[slot] == pending
        pending, slot = pending[~placed], (slot[~placed] + 1) & mask
    # look every sighting's code up
    rank = np.empty(len(device), dtype=np.int64)
    todo = np.arange(len(device))
    slot = ((device * _GOLDEN) >> shift).astype(np.int64)
    codes = device
    while len(todo):
        hit = tab_key[slot] == codes
        rank[todo[hit]] = tab_rank[slot[hit]]
        miss = ~hit
        todo, slot, codes = todo[miss], (slot[miss] + 1) & mask, codes[miss]
    return rank, uniq


def _sort_by_device_time(ts_ms: I64, device: U64, rssi: npt.NDArray[np.int16],
                         day_start_ms: int) -> tuple[I64, U64, npt.NDArray[np.int16]]:
    """Sort sightings by (device, time). numpy's plain sort of int64 is several times faster than any argsort, so
    when the times fit, (device rank, time, rssi) are packed into one int64 key and sorted by value."""
    rel = ts_ms - day_start_ms
    if len(rel) == 0 or rel.min() < 0 or rel.max() >= (1 << _TS_BITS):
        order = np.lexsort((ts_ms, device))
        return ts_ms[order], device[order], rssi[order]
    rank, uniq = _ranks(device)
    key = rank << (_TS_BITS + 7)
    del rank
    key |= rel << 7
    key |= np.clip(rssi.astype(np.int64) + 128, 0, 127)
    key.sort()
    out_rssi = ((key & 127) - 128).astype(np.int16)
    out_ts = ((key >> 7) & ((1 << _TS_BITS) - 1)) + day_start_ms
    out_dev = uniq[key >> (_TS_BITS + 7)]
    return out_ts, out_dev, out_rssi


def summarize(ts_ms: I64, device: U64, rssi: npt.NDArray[np.int16], rules: Rules, day_start_ms: int) -> DayState:
    """Reduce one batch of a store-day's sightings (any order) to its :class:`DayState`."""
    heard = rssi >= rules.passerby_rssi
    if not heard.all():
        ts_ms, device, rssi = ts_ms[heard], device[heard], rssi[heard]
    if len(ts_ms) == 0:
        return empty_state()
    ts_ms, device, rssi = _sort_by_device_time(ts_ms, device, rssi, day_start_ms)
    n = len(ts_ms)
    new_dev = np.empty(n, dtype=bool)
    new_dev[0] = True
    np.not_equal(device[1:], device[:-1], out=new_dev[1:])
    ds = _starts(new_dev)
    inside = rssi >= rules.stay_rssi
    hour = np.clip((ts_ms - day_start_ms) // HOUR_MS, 0, 31).astype(np.uint32)
    bits = np.where(inside, np.left_shift(np.uint32(1), hour), np.uint32(0)).astype(np.uint32)
    ends = np.append(ds[1:], n) - 1
    seen = Seen(device[ds], ts_ms[ds], ts_ms[ends], np.bitwise_or.reduceat(bits, ds))
    # runs: inside sightings chained while consecutive gaps stay within the gap
    it, idev = ts_ms[inside], device[inside]
    if len(it) == 0:
        e = empty_state()
        return DayState(e.runs, seen, e.marks)
    strong = rssi[inside] >= rules.visit_rssi
    brk = np.empty(len(it), dtype=bool)
    brk[0] = True
    np.logical_or(idev[1:] != idev[:-1], (it[1:] - it[:-1]) > rules.gap_ms, out=brk[1:])
    rs = _starts(brk)
    re = np.append(rs[1:], len(it)) - 1
    enter = np.minimum.reduceat(np.where(strong, it, NO_ENTER), rs)
    # marks: the distinct (device, second) of the inside sightings, already in (device, time) order
    sec = it // 1000
    first = np.empty(len(it), dtype=bool)
    first[0] = True
    np.logical_or(idev[1:] != idev[:-1], sec[1:] != sec[:-1], out=first[1:])
    return DayState(Runs(idev[rs], it[rs], it[re], enter), seen, Marks(idev[first], sec[first]))


def merge_runs(a: Runs, b: Runs, rules: Rules) -> Runs:
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    device = np.concatenate([a.device, b.device])
    start = np.concatenate([a.start, b.start])
    end = np.concatenate([a.end, b.end])
    enter = np.concatenate([a.enter, b.enter])
    order = np.lexsort((start, device))
    device, start, end, enter = device[order], start[order], end[order], enter[order]
    n = len(device)
    new_dev = np.empty(n, dtype=bool)
    new_dev[0] = True
    np.not_equal(device[1:], device[:-1], out=new_dev[1:])
    # running maximum of `end` within each device: offset every device group above the previous one
    grp = np.cumsum(new_dev, dtype=np.int64)
    base = start.min()
    key = (grp << 36) + (end - base)
    reach = np.maximum.accumulate(key) - (grp << 36) + base  # furthest end so far within the device
    brk = new_dev.copy()
    brk[1:] |= (start[1:] - reach[:-1]) > rules.gap_ms
    rs = _starts(brk)
    return Runs(device[rs], start[rs], np.maximum.reduceat(end, rs), np.minimum.reduceat(enter, rs))


def merge_seen(a: Seen, b: Seen) -> Seen:
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    device = np.concatenate([a.device, b.device])
    order = np.argsort(device, kind="stable")
    device = device[order]
    first = np.concatenate([a.first, b.first])[order]
    last = np.concatenate([a.last, b.last])[order]
    hours = np.concatenate([a.hours, b.hours])[order]
    new_dev = np.empty(len(device), dtype=bool)
    new_dev[0] = True
    np.not_equal(device[1:], device[:-1], out=new_dev[1:])
    s = _starts(new_dev)
    return Seen(device[s], np.minimum.reduceat(first, s), np.maximum.reduceat(last, s),
                np.bitwise_or.reduceat(hours, s))


def merge_marks(a: Marks, b: Marks) -> Marks:
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    device = np.concatenate([a.device, b.device])
    sec = np.concatenate([a.sec, b.sec])
    order = np.lexsort((sec, device))
    device, sec = device[order], sec[order]
    keep = np.empty(len(device), dtype=bool)
    keep[0] = True
    np.logical_or(device[1:] != device[:-1], sec[1:] != sec[:-1], out=keep[1:])
    return Marks(device[keep], sec[keep])


def merge(a: DayState, b: DayState, rules: Rules) -> DayState:
    """The state of the union of two batches of the same store-day."""
    return DayState(merge_runs(a.runs, b.runs, rules), merge_seen(a.seen, b.seen), merge_marks(a.marks, b.marks))


def _mark_ranges(marks: Marks, device: U64, start: I64, end: I64) -> tuple[I64, I64, I64]:
    """For each stretch ``(device, start, end)`` (ms; every stretch comes from inside sightings, so its device has
    marks): the indices of its first and last mark, and ``gap``, where ``gap[i]`` is the gap (s) from mark
    ``i - 1`` to mark ``i`` (0 at a device's first mark, and one trailing 0). A stretch's gaps are
    ``gap[lo + 1 .. hi]``."""
    n = len(marks)
    new_dev = np.empty(n, dtype=bool)
    new_dev[0] = True
    np.not_equal(marks.device[1:], marks.device[:-1], out=new_dev[1:])
    grp = np.cumsum(new_dev, dtype=np.int64) - 1
    uniq = marks.device[new_dev]  # sorted, distinct
    base = int(marks.sec.min())
    key = (grp << 34) + (marks.sec - base)
    vgrp = np.searchsorted(uniq, device)
    lo = np.searchsorted(key, (vgrp << 34) + (start // 1000 - base), side="left")
    hi = np.searchsorted(key, (vgrp << 34) + (end // 1000 - base), side="right") - 1
    gap = np.zeros(n + 1, dtype=np.int64)
    gap[1:n] = np.where(new_dev[1:], 0, marks.sec[1:] - marks.sec[:-1])
    return lo, hi, gap


def gap_sums(marks: Marks, device: U64, start: I64, end: I64) -> tuple[I64, I64]:
    """For each stretch ``(device, start, end)`` of a device's inside presence (ms): ``sum(g**2)`` and ``sum(g)``
    (s², s) over the gaps ``g`` between its consecutive marks (0 and 0 for one mark)."""
    if len(device) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo, hi, gap = _mark_ranges(marks, device, start, end)
    sq = np.cumsum(gap * gap)
    return sq[hi] - sq[lo], marks.sec[hi] - marks.sec[lo]


def edge_ms(marks: Marks, device: U64, start: I64, end: I64) -> I64:
    """The edge correction of each visit ``(device, start, end)`` (ms): with ``g`` the gaps between the device's
    consecutive marks from ``start`` to ``end``, ``sum(g**2) / sum(g)`` — the mean time from an arrival to the next
    scan plus from the last scan to a departure, for scans of a stationary renewal process (docs/METRICS.md,
    "Dwell"). 0 when the visit has one mark only."""
    return _ratio_ms(*gap_sums(marks, device, start, end))


def _ratio_ms(sq: I64, span: I64) -> I64:
    out = np.zeros(len(sq), dtype=np.int64)
    has = span > 0
    out[has] = sq[has] * 1000 // span[has]
    return out


def longest_gap_s(marks: Marks, device: U64, start: I64, end: I64) -> I64:
    """The longest gap (s) between consecutive marks of each run ``(device, start, end)`` (ms; 0 when the run has
    one mark): the slowest scan cadence the phone showed while it was heard inside."""
    out = np.zeros(len(device), dtype=np.int64)
    if len(device) == 0:
        return out
    lo, hi, gap = _mark_ranges(marks, device, start, end)
    has = hi > lo
    if has.any():
        bounds = np.empty(2 * int(has.sum()), dtype=np.int64)
        bounds[0::2], bounds[1::2] = lo[has] + 1, hi[has] + 1  # the trailing 0 keeps hi + 1 a valid index
        out[has] = np.maximum.reduceat(gap, bounds)[0::2]
    return out


def screen_off_joins(runs: Runs, marks: Marks, rules: Rules) -> npt.NDArray[np.bool_]:
    """Per run: True when it continues the presence of the device's previous run across a screen-off silence
    (docs/METRICS.md, "Silences inside a visit"). Both runs reached ``visit_rssi``, and the silence between them
    (the first run's last inside sighting to the second's first) is at most ``visit_gap_s`` plus the longest gap
    between the marks of either run: the store's time-out, counted from when the phone's next scan was due at the
    slowest cadence it showed while inside. Never more than twice ``visit_gap_s`` (no gap inside a run exceeds it;
    ``Rules.open_ms``). Whether the joined runs make a visit is :func:`visits`'s to decide."""
    n = len(runs)
    join = np.zeros(n, dtype=bool)
    if n < 2:
        return join
    entered = runs.enter != NO_ENTER
    silence = runs.start[1:] - runs.end[:-1]
    cand = np.flatnonzero((runs.device[1:] == runs.device[:-1]) & entered[1:] & entered[:-1]
                          & (silence <= 2 * rules.gap_ms))
    if len(cand) == 0:
        return join
    involved = np.union1d(cand, cand + 1)  # sorted run indices
    longest = longest_gap_s(marks, runs.device[involved], runs.start[involved], runs.end[involved])
    own = np.maximum(longest[np.searchsorted(involved, cand)], longest[np.searchsorted(involved, cand + 1)])
    join[cand + 1] = silence[cand] <= rules.gap_ms + own * 1000
    return join


def visits(state: DayState, rules: Rules) -> Visits:
    """The visits: runs that reached ``visit_rssi``, joined with the device's neighbouring runs across screen-off
    silences (:func:`screen_off_joins`), that lasted ``min_dwell_s`` from the first entry to the last inside
    sighting; with their edge correction. A join is one presence, so it counts as one: fragments that are no visit
    on their own make a visit when the silence between them is one their phone's cadence explains, as they would
    have within the plain time-out."""
    runs = state.runs
    ok = (runs.enter != NO_ENTER) & ((runs.end - runs.enter) >= rules.min_dwell_ms)
    join = screen_off_joins(runs, state.marks, rules)
    if join.any():
        # a joined group starts at its first run's entry and ends at its last run's end, and is a visit when that
        # lasts min_dwell_s (always so when one of its runs is a visit; a single run keeps its own verdict)
        first = np.flatnonzero(~join)
        last = np.append(first[1:], len(runs)) - 1
        keep = (runs.enter[first] != NO_ENTER) & ((runs.end[last] - runs.enter[first]) >= rules.min_dwell_ms)
        runs_kept = np.flatnonzero(keep[np.cumsum(~join) - 1])
        j = join[runs_kept]
        # the edge correction reads the gaps of the parts, not the silences that joined them: by the rule's own
        # reading a silence is not one of the phone's scan intervals (scans were missed), and its square would
        # outweigh the visit's gaps; so the correction stays at most visit_gap_s
        part_start = np.where(j, runs.start[runs_kept], runs.enter[runs_kept])
        sq, span = gap_sums(state.marks, runs.device[runs_kept], part_start, runs.end[runs_kept])
        heads = np.flatnonzero(~j)
        tails = np.append(heads[1:], len(runs_kept)) - 1
        sq, span = np.add.reduceat(sq, heads), np.add.reduceat(span, heads)
        g = runs_kept[heads]
        return Visits(runs.device[g], runs.enter[g], runs.end[runs_kept[tails]], _ratio_ms(sq, span))
    device, start, end = runs.device[ok], runs.enter[ok], runs.end[ok]
    return Visits(device, start, end, edge_ms(state.marks, device, start, end))


# -------------------------------------------------------------------------------------------------------------
# the AP's own stations (sightings of basis "connected", sensor.stations)


def station_state(ts_ms: I64, device: U64, rules: Rules, day_start_ms: int) -> DayState:
    """One store-day's state from the AP's connected stations alone (any order).

    Association is the evidence of presence: hostapd lists a station only while it is associated and heard within
    the sensor's ``max_inactive_ms``, and its signal is the AP's own reading (absent with some drivers), not the
    sensor radio's that the RSSI thresholds were set for. So every station sighting is inside and strong, and the
    rest of the visit rules apply unchanged (``visit_gap_s`` chains the polls, ``min_dwell_s`` makes a visit)."""
    rssi = np.full(len(ts_ms), rules.visit_rssi, dtype=np.int16)
    return summarize(ts_ms, device, rssi, rules, day_start_ms)


def station_visits(state: DayState, rules: Rules) -> Visits:
    """The connected stations' visits (:func:`visits`'s rules) without the edge correction: the station list is
    polled at a fixed interval (``keliu sensor stations --interval``, 10 s by default), the first poll after an
    association is at most one interval late, and the last sighting is already *after* the phone left (a station
    stays listed while it was heard within the last ``max_inactive_ms``, 60 s), so the correction, which adds a
    scan gap (one interval for regular polls) for edges that are missed, would only add to the late end."""
    v = visits(state, rules)
    return Visits(v.device, v.start, v.end, np.zeros(len(v), dtype=np.int64))
