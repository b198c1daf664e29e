"""A store-day's metrics and a mall-day's shoppers and transitions (pure, vectorized with numpy).

:func:`store_day` takes the day's :class:`~analytics.visits.DayState`, the store's rules, the history of earlier
days (visits and staff flags by device) and the portal's login and new-member times, and returns the visits, the
per-device day rows and the rollups per 5 minutes, hour and day. :func:`mall_day` counts each shopper once across
a mall's stores and the store-to-store transitions. Definitions: docs/METRICS.md.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from analytics.calibration import Calibration
from analytics.visits import (
    HOUR_MS,
    I64,
    U64,
    DayState,
    Rules,
    Seen,
    Visits,
    device_codes,
    station_state,
    station_visits,
    visits,
)

DWELL_LABELS = ("<5m", "5-20m", "20-60m", "1-6h", ">6h")
DWELL_FIELDS = ("dwell_lt5m", "dwell_5_20m", "dwell_20_60m", "dwell_1_6h", "dwell_gt6h")
DWELL_EDGES_MS = np.array([5 * 60, 20 * 60, 60 * 60, 6 * 3600], dtype=np.int64) * 1000
LOYALTY_LABELS = ("first_time", "daily", "weekly", "monthly", "occasional")
PERIODS: Mapping[str, int] = {"5m": 300_000, "1h": HOUR_MS, "1d": 24 * HOUR_MS}


@dataclass(frozen=True)
class History:
    """Earlier days of one store: ``visit_age`` days ago the device visited; ``staff_age`` days ago it was flagged
    staff automatically (same-day rule). Ages are ≥ 1; one row per (device, day)."""

    visit_device: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    visit_age: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    staff_device: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    staff_age: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Rollup:
    """One store's figures for one period (``5m``, ``1h``, ``1d``) starting at ``start`` (epoch seconds, UTC)."""

    period: str
    start: int
    visitors: int
    passersby: int
    visits: int
    capture_rate: float
    median_dwell_s: float
    new_visitors: int
    repeat_visitors: int
    staff_excluded: int
    wifi_logins: int
    new_members: int
    dwell: tuple[int, ...]  #: counts per DWELL_LABELS
    loyalty: tuple[int, ...]  #: counts per LOYALTY_LABELS


@dataclass(frozen=True, eq=False)
class Devices:
    """The day's per-device rows (sorted by device): visited, staff (final), auto_staff (the same-day rule, kept
    as history), loyalty bucket index (-1 if not a visitor), first heard and the inside-hours bitmask."""

    device: U64
    visited: npt.NDArray[np.bool_]
    staff: npt.NDArray[np.bool_]
    auto_staff: npt.NDArray[np.bool_]
    loyalty: npt.NDArray[np.int8]
    first: I64
    hours: npt.NDArray[np.uint32]


@dataclass(frozen=True)
class StoreDay:
    visits: Visits
    visit_staff: npt.NDArray[np.bool_]
    devices: Devices
    rollups: tuple[Rollup, ...]

    def rollup(self, period: str) -> list[Rollup]:
        return [r for r in self.rollups if r.period == period]


def _open_mask(rules: Rules) -> int:
    return sum(1 << h for h in range(rules.open_hour, rules.close_hour))


def _member(values: U64, pool: U64) -> npt.NDArray[np.bool_]:
    return np.isin(values, pool) if len(pool) else np.zeros(len(values), dtype=bool)


def _medians(bins: I64, values: I64, nbins: int) -> npt.NDArray[np.float64]:
    """Median of ``values`` per bin (0.0 for an empty bin)."""
    out = np.zeros(nbins, dtype=np.float64)
    if len(values) == 0:
        return out
    order = np.lexsort((values, bins))
    v = values[order]
    counts = np.bincount(bins, minlength=nbins)
    offs = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = offs[has] + (counts[has] - 1) // 2
    hi = offs[has] + counts[has] // 2
    out[has] = (v[lo] + v[hi]) / 2.0
    return out


def loyalty_of(device: U64, history: History, rules: Rules) -> npt.NDArray[np.int8]:
    """Loyalty bucket index (LOYALTY_LABELS) of each device from its earlier visit days."""
    out = np.zeros(len(device), dtype=np.int8)
    keep = history.visit_age <= rules.history_days
    hd, ha = history.visit_device[keep], history.visit_age[keep]
    if len(hd) == 0 or len(device) == 0:
        return out
    order = np.argsort(hd, kind="stable")
    hd, ha = hd[order], ha[order]
    uniq, first = np.unique(hd, return_index=True)
    min_age = np.minimum.reduceat(ha, first)
    last7 = np.add.reduceat((ha <= 7).astype(np.int64), first)
    pos = np.searchsorted(uniq, device)
    pos_c = np.minimum(pos, len(uniq) - 1)
    known = uniq[pos_c] == device
    ma, l7 = min_age[pos_c], last7[pos_c]
    bucket = np.where(l7 >= 5, 1, np.where(ma <= 7, 2, np.where(ma <= 30, 3, 4)))
    out[known] = bucket[known]
    return out


def known_staff(history: History, rules: Rules) -> U64:
    """Staff known before the day's own presence: the manual list and devices flagged staff (same-day rule) on at
    least ``staff_days`` of the last 7 days (sorted, unique)."""
    recent = history.staff_age <= 7
    hs_dev, hs_n = np.unique(history.staff_device[recent], return_counts=True)
    return np.union1d(hs_dev[hs_n >= rules.staff_days], device_codes(list(rules.staff_devices)))


def store_day(state: DayState, rules: Rules, day_start_ms: int, history: History | None = None,
              logins_ms: I64 | None = None, members_ms: I64 | None = None) -> StoreDay:
    """Every figure of one store-day from its merged state (see the module docstring)."""
    history = History() if history is None else history
    seen = state.seen
    vis = visits(state, rules)
    # staff: manual list, same-day presence over the opening hours, or flagged on most recent days
    open_mask = np.uint32(_open_mask(rules))
    open_hours = rules.close_hour - rules.open_hour
    present = np.bitwise_count(seen.hours & open_mask).astype(np.int64)
    auto = present >= np.ceil(rules.staff_fraction * open_hours - 1e-9)
    staff = auto | _member(seen.device, known_staff(history, rules))
    staff_dev = seen.device[staff]
    visit_staff = _member(vis.device, staff_dev)
    # visitors: non-staff devices with a visit; counted at the start of their first visit of the day
    v_ok = ~visit_staff
    vd, vs, dwell = vis.device[v_ok], vis.start[v_ok], vis.dwell_ms[v_ok]
    visitor_dev, first_idx = np.unique(vd, return_index=True)  # visits are sorted by (device, start)
    visitor_first = vs[first_idx]
    visited = _member(seen.device, visitor_dev)
    loyalty_v = loyalty_of(visitor_dev, history, rules)
    loyalty = np.full(len(seen.device), -1, dtype=np.int8)
    loyalty[visited] = loyalty_v  # both sorted by device, visitors ⊆ seen
    passer = ~visited & ~staff
    devices = Devices(seen.device, visited, staff, auto, loyalty, seen.first, seen.hours)
    dwell_bucket = np.searchsorted(DWELL_EDGES_MS, dwell, side="right")
    logins = np.zeros(0, dtype=np.int64) if logins_ms is None else logins_ms
    members = np.zeros(0, dtype=np.int64) if members_ms is None else members_ms
    rollups: list[Rollup] = []
    for period, length in PERIODS.items():
        nb = (24 * HOUR_MS) // length

        def bins(t: I64, nb: int = nb, length: int = length) -> I64:
            return np.clip((t - day_start_ms) // length, 0, nb - 1).astype(np.int64)

        def count(t: I64, nb: int = nb) -> I64:
            return np.bincount(bins(t), minlength=nb)[:nb]

        vb = bins(visitor_first)
        n_vis = np.bincount(vb, minlength=nb)
        n_new = np.bincount(vb[loyalty_v == 0], minlength=nb)
        n_pass = count(seen.first[passer])
        n_staff = count(seen.first[staff])
        n_visits = count(vs)
        med = _medians(bins(vs), dwell, nb)
        dw = np.zeros((nb, len(DWELL_LABELS)), dtype=np.int64)
        np.add.at(dw, (bins(vs), dwell_bucket), 1)
        ly = np.zeros((nb, len(LOYALTY_LABELS)), dtype=np.int64)
        np.add.at(ly, (vb, loyalty_v.astype(np.int64)), 1)
        n_log, n_mem = count(logins), count(members)
        for i in range(nb):
            v, p = int(n_vis[i]), int(n_pass[i])
            rollups.append(Rollup(
                period=period, start=(day_start_ms + i * length) // 1000, visitors=v, passersby=p,
                visits=int(n_visits[i]), capture_rate=v / (v + p) if v + p else 0.0,
                median_dwell_s=float(med[i]) / 1000.0, new_visitors=int(n_new[i]),
                repeat_visitors=v - int(n_new[i]), staff_excluded=int(n_staff[i]), wifi_logins=int(n_log[i]),
                new_members=int(n_mem[i]), dwell=tuple(int(x) for x in dw[i]),
                loyalty=tuple(int(x) for x in ly[i])))
    return StoreDay(vis, visit_staff, devices, tuple(rollups))


# -------------------------------------------------------------------------------------------------------------
# connected shoppers: the AP's own stations (basis "connected_stations")

CONNECTED_BASIS = "connected_stations"


class Connected(TypedDict):
    """The ``connected`` block of a store's day or range report (docs/METRICS.md, "Error bands and bases")."""

    basis: str  #: always :data:`CONNECTED_BASIS`
    visitors: int | None  #: None: no station seen (the AP's list not fed, or nobody connected)
    visits: int | None
    median_dwell_s: float | None  #: None: no visit
    dwell_buckets: dict[str, int | None]
    staff_excluded: int | None
    #: the connected phones paired with their probe-based devices, against the estimates (analytics.calibration);
    #: None: fewer pairs than its minimum. Reported beside the figures, never applied to them
    calibration: Calibration | None
    #: the share of the range's opening hours (5-minute slots, up to now) in which the AP's station list was read
    #: (analytics.coverage); below 1 the figures miss the stations of the slots not read (a lower bound). None: no
    #: poll recorded in the range (a poller older than the records, or none running)
    coverage: float | None
    #: epoch seconds of the range's newest read of the station list; None: none recorded
    last_poll: float | None


@dataclass(frozen=True, eq=False)
class ConnectedDay:
    """One store-day of connected stations: the devices that made a visit (staff left out), their visits' dwell
    (ms, exact: no edge correction, :func:`analytics.visits.station_visits`) and devices, and the staff left
    out."""

    visitors: int
    dwell_ms: I64
    staff_excluded: int
    device: U64  #: each visit's station (parallel to ``dwell_ms``)
    start: I64  #: each visit's first poll (epoch ms)
    end: I64  #: each visit's last poll (epoch ms)
    staff: U64  #: the stations left out as staff (sorted, unique)


def _connected(ts_ms: I64, device: U64, rules: Rules, day_start_ms: int) -> tuple[ConnectedDay, Seen,
                                                                                npt.NDArray[np.bool_]]:
    """:func:`connected_day` with the stations heard (``Seen``) and which of them are staff."""
    state = station_state(ts_ms, device, rules, day_start_ms)
    seen = state.seen
    open_hours = rules.close_hour - rules.open_hour
    present = np.bitwise_count(seen.hours & np.uint32(_open_mask(rules))).astype(np.int64)
    staff = (present >= np.ceil(rules.staff_fraction * open_hours - 1e-9)) | _member(
        seen.device, device_codes(list(rules.staff_devices)))
    vis = station_visits(state, rules)
    ok = ~_member(vis.device, seen.device[staff])
    day = ConnectedDay(visitors=len(np.unique(vis.device[ok])), dwell_ms=vis.dwell_ms[ok],
                       staff_excluded=int(staff.sum()), device=vis.device[ok], start=vis.start[ok], end=vis.end[ok],
                       staff=seen.device[staff])
    return day, seen, staff


def connected_day(ts_ms: I64, device: U64, rules: Rules, day_start_ms: int) -> ConnectedDay:
    """The connected stations' day from their sightings alone (never mixed with the probe-based devices: a
    connected phone is also among those under another id). Staff: the manual list and the same-day rule (present
    in ``staff_fraction`` of the opening hours), as for the probe-based figures; the habitual-staff history does
    not apply (it is kept by the probe-based ids)."""
    return _connected(ts_ms, device, rules, day_start_ms)[0]


@dataclass(frozen=True, eq=False)
class ConnectedRecord:
    """What the pipeline stores of a store-day's connected stations (``analytics.store.connected_visits`` and
    ``connected_days``), enough to give back its :class:`ConnectedDay` (:func:`recorded_day`) without the polls:
    one row per connected visit (staff left out) and one per station left out as staff (``staff`` True; ``start``
    and ``end`` its first and last poll of the day: staff make no visit, the row keeps the station's id for the
    mall, which leaves it out at every store). ``stations``: the stations heard (0: none, the day has no block)."""

    stations: int
    device: U64
    start: I64
    end: I64
    staff: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.device)


def connected_record(ts_ms: I64, device: U64, rules: Rules, day_start_ms: int) -> ConnectedRecord:
    """The store-day's connected stations as the pipeline stores them (:class:`ConnectedRecord`)."""
    day, seen, staff = _connected(ts_ms, device, rules, day_start_ms)
    n = len(day.device)
    return ConnectedRecord(stations=len(seen), device=np.concatenate([day.device, seen.device[staff]]),
                           start=np.concatenate([day.start, seen.first[staff]]),
                           end=np.concatenate([day.end, seen.last[staff]]),
                           staff=np.arange(n + int(staff.sum())) >= n)


def recorded_day(record: ConnectedRecord) -> ConnectedDay | None:
    """The :class:`ConnectedDay` of a stored record, the same as :func:`connected_day` made of the day's polls
    (its visits in the same order, by station and start); None when no station was heard (no block that day)."""
    if record.stations == 0:
        return None
    ok = ~record.staff
    device, start, end = record.device[ok], record.start[ok], record.end[ok]
    order = np.lexsort((start, device))
    device, start, end = device[order], start[order], end[order]
    staff = np.unique(record.device[record.staff])
    return ConnectedDay(visitors=len(np.unique(device)), dwell_ms=end - start, staff_excluded=len(staff),
                        device=device, start=start, end=end, staff=staff)


def mall_connected_day(days: Sequence[ConnectedDay]) -> ConnectedDay:
    """One mall-day of connected stations from its stores' days (at least one): a station with a visit at two
    stores is one connected visitor, as :func:`mall_day` counts a shopper once, and a station left out as staff at
    any store is left out at every store (its visits too); the visits are every store's. The station ids of two
    stores meet only under the same key, day and address (docs/METRICS.md, "Mall and operator")."""
    staff = np.unique(np.concatenate([d.staff for d in days]))
    device = np.concatenate([d.device for d in days])
    ok = ~_member(device, staff)
    return ConnectedDay(visitors=len(np.unique(device[ok])),
                        dwell_ms=np.concatenate([d.dwell_ms for d in days])[ok], staff_excluded=len(staff),
                        device=device[ok], start=np.concatenate([d.start for d in days])[ok],
                        end=np.concatenate([d.end for d in days])[ok], staff=staff)


def connected_hours(day: ConnectedDay, day_start_ms: int) -> list[int]:
    """Connected visitors present in each of the day's 24 hours (real hours from the store-local midnight, as the
    hourly rollups count them; a 25th hour of a daylight-saving day folds into the last): the distinct stations
    with a visit that overlaps the hour, from its first poll to its last (an hour [h, h + 1) overlaps a visit when
    ``start < h + 1`` and ``end >= h``); staff left out, as in the day's ``visitors``. A visitor present over three
    hours counts in each of them, so the hours do not add up to the day (unlike ``hourly_visitors``, which counts a
    visitor once, in the hour its first visit started)."""
    first = np.clip((day.start - day_start_ms) // HOUR_MS, 0, 23).astype(np.int64)
    last = np.clip((day.end - day_start_ms) // HOUR_MS, 0, 23).astype(np.int64)
    span = last - first + 1
    hour = np.repeat(first, span) + (np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span))
    pairs = np.unique(np.stack([np.repeat(day.device, span), hour.astype(np.uint64)]), axis=1)
    return [int(n) for n in np.bincount(pairs[1].astype(np.int64), minlength=24)[:24]]


def connected_until(day: ConnectedDay, until_ms: int) -> ConnectedDay:
    """``day``'s connected visits that began before ``until_ms`` (the figures of a day up to a time of it; the
    staff left out stay as they are)."""
    keep = day.start < until_ms
    if keep.all():
        return day
    return replace(day, visitors=len(np.unique(day.device[keep])), dwell_ms=day.dwell_ms[keep],
                   device=day.device[keep], start=day.start[keep], end=day.end[keep])


def no_connected_day() -> ConnectedDay:
    """A day whose station list was read and held nobody (a day with polls and no station): 0, not None."""
    empty_i, empty_u = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return ConnectedDay(visitors=0, dwell_ms=empty_i, staff_excluded=0, device=empty_u, start=empty_i, end=empty_i,
                        staff=empty_u)


def connected_figures(days: list[ConnectedDay], calibration: Calibration | None = None, *,
                      coverage: float | None = None, last_poll: float | None = None) -> Connected:
    """The report's ``connected`` block over ``days`` (one store day, or a range's days that have stations or
    polls, :func:`no_connected_day`; none: every figure None, never 0):
    visitors and staff summed per day (the station ids are keyed per day, as the probe-based visitors are counted),
    the visits, their exact median dwell and dwell buckets (labels of :data:`DWELL_LABELS`) over all the visits;
    ``calibration`` as given (:func:`analytics.calibration.calibration`; None without stations); ``coverage`` and
    ``last_poll`` as given (:mod:`analytics.coverage`)."""
    dwell = np.concatenate([d.dwell_ms for d in days]) if days else np.zeros(0, dtype=np.int64)
    buckets = np.bincount(np.searchsorted(DWELL_EDGES_MS, dwell, side="right"), minlength=len(DWELL_LABELS))
    median = float(_medians(np.zeros(len(dwell), dtype=np.int64), dwell, 1)[0]) / 1000.0 if len(dwell) else None
    if not days:
        return Connected(basis=CONNECTED_BASIS, visitors=None, visits=None, median_dwell_s=None,
                         dwell_buckets={k: None for k in DWELL_LABELS}, staff_excluded=None, calibration=None,
                         coverage=coverage, last_poll=last_poll)
    return Connected(basis=CONNECTED_BASIS, visitors=sum(d.visitors for d in days), visits=len(dwell),
                     median_dwell_s=median, dwell_buckets={k: int(b) for k, b in zip(DWELL_LABELS, buckets)},
                     staff_excluded=sum(d.staff_excluded for d in days), calibration=calibration,
                     coverage=coverage, last_poll=last_poll)


# -------------------------------------------------------------------------------------------------------------
# mall level


@dataclass(frozen=True)
class MallDay:
    visitors: int
    passersby: int
    staff_excluded: int
    transitions: dict[tuple[int, int], int]  #: (from store index, to store index) → count

    @property
    def capture_rate(self) -> float:
        return self.visitors / (self.visitors + self.passersby) if self.visitors + self.passersby else 0.0


def mall_day(visit_store: I64, visit_device: U64, visit_start: I64, seen_device: U64, staff_device: U64) -> MallDay:
    """Shoppers of a mall-day counted once across its stores, and their store-to-store transitions.

    ``visit_*`` are the mall's visits (all stores, any order); ``seen_device`` every device heard at any store;
    ``staff_device`` devices flagged staff at any store (excluded mall-wide)."""
    ok = ~_member(visit_device, staff_device)
    vst, vdev, vstart = visit_store[ok], visit_device[ok], visit_start[ok]
    shoppers = np.unique(vdev)
    heard = np.unique(seen_device)
    staff = np.unique(staff_device)
    passers = heard[~_member(heard, shoppers) & ~_member(heard, staff)]
    transitions: dict[tuple[int, int], int] = {}
    if len(vdev) > 1:
        order = np.lexsort((vst, vstart, vdev))
        d, s = vdev[order], vst[order]
        step = (d[1:] == d[:-1]) & (s[1:] != s[:-1])
        pairs = np.stack([s[:-1][step], s[1:][step]], axis=1)
        if len(pairs):
            uniq, counts = np.unique(pairs, axis=0, return_counts=True)
            transitions = {(int(a), int(b)): int(c) for (a, b), c in zip(uniq, counts)}
    return MallDay(len(shoppers), len(passers), int(_member(staff, heard).sum()), transitions)
