"""Reports for the dashboards and the CLI (an edge: reads the rollup tables; see docs/CONTRACTS.md).

Every function reads rollups written by the pipeline (``analytics.pipeline``); none recomputes from sightings,
except the live occupancy (:func:`store_live`, :func:`mall_live`), which reads the last minutes of sightings (an
indexed time range) so that it is fresh within seconds of the frames instead of waiting for closed visits, and the
``connected`` block of a store's day or range and of a mall's or the operator's range, with the store's
``hourly_connected`` (the AP's own stations, exact, basis ``connected_stations``): it reads the connected visits the
pipeline stored for the days it rolled up (a few hundred rows a store-day), and for the other days (not rolled up
yet) the connected-station sightings of every store of the report in one query by their partial index (a few
thousand rows a store-day; the probe sightings are not read), whose visits it builds with the same rules
(``analytics.visits``) at report time; its ``calibration`` (``analytics.calibration``) also reads the range's
association sightings that carry a station id (by their own partial index) and the stored visits of their probe
devices.
Dates are store-local days and ranges include both ends.

No data is ``None``, never 0: a day without a daily rollup (the sensor heard nothing, or the day was not rolled up
yet) reports ``None`` for every figure the sensor makes (:data:`SENSOR`: visitors, passers-by, visits, capture
rate, median dwell, new and repeat visitors, staff, the dwell and loyalty buckets), and an hour without an hourly
rollup, or after the newest sighting of the store (an hour that has not been heard yet), is ``None`` in the hourly
lists. A capture rate without anyone heard and a median dwell without a visit are ``None`` too. The portal's figures
(:data:`PORTAL`: Wi-Fi logins, new members) are always numbers: the portal's own tables are read for the days the
sensor missed. A range sums the days that have data; ``None`` only when none has.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict, cast
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics import store
from analytics.bands import Uncertainty, peak_hour, uncertainty
from analytics.calibration import PairDay, calibration, pair_day
from analytics.coverage import I64, coverage, coverage_counts, heard_hours, opening_hours, slots
from analytics.days import day_bounds, local_day
from analytics.metrics import (
    DWELL_FIELDS,
    DWELL_LABELS,
    LOYALTY_LABELS,
    Connected,
    ConnectedDay,
    ConnectedRecord,
    History,
    connected_day,
    connected_figures,
    connected_hours,
    connected_until,
    known_staff,
    mall_connected_day,
    no_connected_day,
    recorded_day,
)
from analytics.occupancy import WINDOW_S, Present, figures, lookback_s, present, union
from analytics.pipeline import context
from analytics.visits import HOUR_MS, U64, Rules, device_codes, to_ms
from keliu.config import Config

SCALARS = ("visitors", "passersby", "visits", "capture_rate", "median_dwell_s", "new_visitors", "repeat_visitors",
           "staff_excluded", "wifi_logins", "new_members")
_SUMMED = tuple(k for k in SCALARS if k not in ("capture_rate", "median_dwell_s"))
#: the portal's figures (always known); every other scalar is the sensor's and ``None`` without its data
PORTAL = ("wifi_logins", "new_members")
SENSOR = tuple(k for k in SCALARS if k not in PORTAL)


# -- the contract with the dashboards and the CLI (docs/CONTRACTS.md): what each report function returns

class Figures(TypedDict):
    """The scalar metrics of a store over a day or a range (``None``: the sensor has no data for it)."""

    visitors: int | None
    passersby: int | None
    visits: int | None
    capture_rate: float | None
    median_dwell_s: float | None
    new_visitors: int | None
    repeat_visitors: int | None
    staff_excluded: int | None
    wifi_logins: int
    new_members: int


class DayFigures(Figures):
    """One day's figures with the day's date."""

    date: str


class Buckets(Figures):
    """The figures plus the dwell-time and loyalty histograms (label → count)."""

    dwell_buckets: dict[str, int | None]
    loyalty_buckets: dict[str, int | None]


class StoreDay(Buckets):
    store: str
    #: the calibrated dwell estimate, the error bands and each figure's basis (analytics.bands)
    uncertainty: Uncertainty
    #: connected shoppers: the AP's own stations, exact (basis "connected_stations"), never in the figures above
    connected: Connected
    date: str
    hourly_visitors: list[int | None]
    hourly_passersby: list[int | None]
    #: connected visitors present in each hour (analytics.metrics.connected_hours); None: the AP's station list not
    #: read in that hour (a day with polls recorded), no station that day (a day without), or not heard yet
    hourly_connected: list[int | None]


class StoreRange(Buckets):
    store: str
    uncertainty: Uncertainty
    connected: Connected
    start: str
    end: str
    hourly_visitors: list[int | None]
    hourly_passersby: list[int | None]
    hourly_connected: list[int | None]
    days: list[DayFigures]


class MallStore(Figures):
    """One store of a mall over the range."""

    id: str
    name: str
    #: the error bands and bases of the store's figures over the range (analytics.bands)
    uncertainty: Uncertainty
    #: the store's connected shoppers (basis "connected_stations"); ``calibration`` is in the store's own report
    connected: Connected


class MallTotals(TypedDict):
    """A mall's (or the operator's) totals: a shopper counted once per day however many stores they entered."""

    visitors: int | None
    passersby: int | None
    staff_excluded: int | None
    capture_rate: float | None
    wifi_logins: int
    new_members: int
    visits: int | None
    #: the bands of the totals (the same calibrated mapping applied to the sums; docs/METRICS.md "Mall and operator")
    uncertainty: Uncertainty
    #: connected shoppers, a station once per day across the mall's stores; never added to the figures above
    connected: Connected


class Transition(TypedDict("Transition", {"from": str})):
    to: str
    count: int


class MallRange(TypedDict):
    id: str
    name: str
    start: str
    end: str
    stores: list[MallStore]
    totals: MallTotals
    transitions: list[Transition]


class OperatorRange(TypedDict):
    start: str
    end: str
    malls: list[MallRange]
    totals: MallTotals


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _rate(v: int | None, p: int | None) -> float | None:
    return None if v is None or p is None or not v + p else v / (v + p)


def _sum(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _weighted_median(pairs: Sequence[tuple[float, int]]) -> float | None:
    """Median of values each repeated ``weight`` times (the visit-weighted median of daily medians)."""
    pairs = sorted((v, w) for v, w in pairs if w > 0)
    total = sum(w for _, w in pairs)
    if total == 0:
        return None
    lo_rank, hi_rank = (total - 1) // 2, total // 2
    acc, lo, hi = 0, None, None
    for v, w in pairs:
        if lo is None and acc + w > lo_rank:
            lo = v
        if acc + w > hi_rank:
            hi = v
            break
        acc += w
    assert lo is not None and hi is not None
    return (lo + hi) / 2.0


def _day_row(row: Mapping[str, Any] | None, portal: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """A day's figures from its ``1d`` row; without one, ``None`` for the sensor's and ``portal`` (logins, new
    members counted from the portal's tables) for the portal's."""
    if row is None:
        return {k: None for k in SENSOR} | dict(zip(PORTAL, portal)) | {
            "dwell_buckets": {k: None for k in DWELL_LABELS}, "loyalty_buckets": {k: None for k in LOYALTY_LABELS}}
    out: dict[str, Any] = {k: int(row[k]) for k in _SUMMED}
    out["capture_rate"] = _rate(out["visitors"], out["passersby"])
    out["median_dwell_s"] = float(row["median_dwell_s"]) if out["visits"] else None
    out["dwell_buckets"] = {label: int(row[f]) for label, f in zip(DWELL_LABELS, DWELL_FIELDS)}
    out["loyalty_buckets"] = {label: int(row["loyal_" + label]) for label in LOYALTY_LABELS}
    return out


def _key_range(start: date, end: date) -> tuple[int, int]:
    """Epoch seconds [lo, hi) holding the ``start`` of every rollup of the store-local days [start, end], whatever
    the store's time zone (UTC-12 to UTC+14), with a day to spare on each side. Reading by the primary key
    (store, period, start) in this range and filtering on ``day`` reads the range's rows and few others."""
    lo = datetime.combine(start, time(), UTC) - timedelta(days=2)
    hi = datetime.combine(end, time(), UTC) + timedelta(days=3)
    return int(lo.timestamp()), int(hi.timestamp())


def _store_days(conn: Connection, store_id: str, start: date, end: date) -> dict[date, Any]:
    """The store's ``1d`` rows of the days [start, end] by day (one query)."""
    r = store.rollups.c
    lo, hi = _key_range(start, end)
    rows = conn.execute(sa.select(store.rollups).where(
        r.store == store_id, r.period == "1d", r.start >= lo, r.start < hi, r.day >= start, r.day <= end
    ).order_by(r.start)).mappings().all()
    return {row["day"]: row for row in rows}


Hours = tuple[list[int | None], list[int | None]]


def _hours(conn: Connection, store_id: str, start: date, end: date, last: float | None) -> dict[date, Hours]:
    """Visitors and passers-by per hour of the day (a day's ``1h`` rows in order of start) of each day in
    [start, end] that has ``1h`` rows, in one query for the whole range (only the columns needed: an hourly row
    per day and hour is most of what a long range reads). An hour without its row, or starting after the store's
    newest sighting (not heard yet: the pipeline writes a day's 24 hours at once), is ``None``."""
    r = store.rollups.c
    lo, hi = _key_range(start, end)
    rows = conn.execute(sa.select(r.day, r.start, r.visitors, r.passersby).where(
        r.store == store_id, r.period == "1h", r.start >= lo, r.start < hi, r.day >= start, r.day <= end
    ).order_by(r.start)).all()
    out: dict[date, Hours] = {}
    seen: dict[date, int] = {}
    for day, hour_start, v, p in rows:
        i = seen.get(day, 0)
        seen[day] = i + 1
        if i >= 24:
            continue
        hv, hp = out.setdefault(day, _no_hours())
        if last is None or hour_start <= last:
            hv[i], hp[i] = int(v), int(p)
    return out


def _no_hours() -> Hours:
    return [None] * 24, [None] * 24


def _portal_days(conn: Connection, store_id: str, days: Sequence[date],
                 until: float | None = None) -> dict[date, tuple[int, int]]:
    """Wi-Fi logins and new members of the store on each of ``days``, from the portal's tables (one query each
    for the span of the days): the figures of a day the sensor has no rollup for (before ``until`` only, when
    given)."""
    if not days:
        return {}
    tenant = store.tenant(conn, store_id)
    tz = ZoneInfo(tenant[1] if tenant else "UTC")
    lo = datetime.combine(min(days), time(), tz).astimezone(UTC)
    hi = datetime.combine(max(days) + timedelta(days=1), time(), tz).astimezone(UTC)
    if until is not None:
        hi = min(hi, datetime.fromtimestamp(until, UTC))
    logins, members = store.portal_times(conn, store_id, lo, hi)
    out = {d: (0, 0) for d in days}
    for i, times in enumerate((logins, members)):
        for ts in times:
            d = ts.astimezone(tz).date()
            if d in out:
                counts = list(out[d])
                counts[i] += 1
                out[d] = (counts[0], counts[1])
    return out


def _cut_row(conn: Connection, store_id: str, day: date, until: float) -> dict[str, Any]:
    """The figures of ``day`` up to ``until`` (epoch seconds): the sums of its ``5m`` rows that ended by then (of
    its ``1h`` rows when it has no ``5m`` row before then, as history imported by the hour), in the shape of a
    ``1d`` row (the median dwell: the visit-weighted median of theirs). Each figure is counted where the daily one
    is (a visitor at the start of their first visit, a passer-by when first heard), so these are the figures of the
    shoppers who had arrived by ``until``, each as the whole day classed them."""
    r = store.rollups.c
    lo, hi = _key_range(day, day)
    rows = conn.execute(sa.select(store.rollups).where(
        r.store == store_id, r.period.in_(("5m", "1h")), r.start >= lo, r.start < hi, r.day == day,
        r.start < until)).mappings().all()
    period = "5m" if any(x["period"] == "5m" for x in rows) else "1h"
    length = 300 if period == "5m" else 3600
    rows = [x for x in rows if x["period"] == period and x["start"] + length <= until]
    out: dict[str, Any] = {k: sum(int(x[k]) for x in rows) for k in store.COUNTS}
    out["median_dwell_s"] = _weighted_median([(float(x["median_dwell_s"]), int(x["visits"])) for x in rows]) or 0.0
    return out


def _per_day(conn: Connection, store_id: str, start: date, end: date, until: float | None = None,
             tz: str = "UTC") -> tuple[dict[date, Any], list[dict[str, Any]]]:
    """The ``1d`` rows of [start, end] by day, and each day's figures (:func:`_day_row`). With ``until`` (epoch
    seconds; ``tz`` the store's time zone) the figures stop there: its day's are :func:`_cut_row`'s, the days after
    it have none (the sensor's ``None``, the portal's 0), like a current period that is not over yet."""
    rows = _store_days(conn, store_id, start, end)
    shown = dict(rows)
    if until is not None:
        last = local_day(until, tz)
        shown = {d: _cut_row(conn, store_id, d, until) if d == last else row for d, row in rows.items() if d <= last}
    portal = _portal_days(conn, store_id, [d for d in _days(start, end) if d not in shown], until)
    return rows, [{"date": d.isoformat()} | _day_row(shown.get(d), portal.get(d, (0, 0))) for d in _days(start, end)]


#: a store's connected-station days: store-local day → (the day's connected stations, its first instant in epoch ms)
StationDays = dict[date, tuple[ConnectedDay, int]]
#: the AP's polls of each store over a report's days: (the 5-minute slots polled, sorted; the newest poll or None)
Polled = dict[str, tuple[I64, float | None]]


def _polled(conn: Connection, zones: Mapping[str, tuple[str, Rules]], start: date, end: date) -> Polled:
    """The slots in which the AP's station list of each store of ``zones`` was read on its store-local days
    [start, end], and its newest read, in one query for all the stores (``analytics.store.load_polls``)."""
    if not zones:
        return {}
    bounds = {sid: (day_bounds(start, tz)[0] // 1000, day_bounds(end, tz)[1] // 1000)
              for sid, (tz, _r) in zones.items()}
    rows = store.load_polls(conn, list(zones), min(a for a, _b in bounds.values()),
                            max(b for _a, b in bounds.values()))
    mine: dict[str, list[tuple[int, float]]] = {sid: [] for sid in zones}
    for sid, slot, last in rows:
        a, b = bounds[sid]
        if a <= slot < b:
            mine[sid].append((slot, last))
    return {sid: (slots(s for s, _l in got), max((t for _s, t in got), default=None)) for sid, got in mine.items()}


def _cut(until: float | None, last: float | None, last_poll: float | None) -> float:
    """Where a report's coverage stops: the store's newest sighting or poll (the slots after it are not heard
    yet, not missed), and ``until`` when earlier."""
    heard = max((t for t in (last, last_poll) if t is not None), default=0.0)
    return heard if until is None else min(until, heard)


def _cover(polled: tuple[I64, float | None], zone: tuple[str, Rules], start: date, end: date,
           cut: float) -> tuple[int, int] | None:
    """(slots polled, slots) of the store's opening hours over [start, end] up to ``cut``
    (:func:`analytics.coverage.coverage_counts`); None when no poll is recorded in the range."""
    got, last_poll = polled
    if last_poll is None:
        return None
    tz, rules = zone
    return coverage_counts(got, [opening_hours(d, tz, rules) for d in _days(start, end)], cut)


def _zones(conn: Connection, cfg: Config | None, store_ids: Sequence[str]) -> dict[str, tuple[str, Rules]]:
    """Time zone and visit rules of each store: the store's own (``cfg``); without it the default rules and the
    tenants table's time zone."""
    out: dict[str, tuple[str, Rules]] = {}
    for sid in store_ids:
        if cfg is not None:
            ctx = context(conn, cfg, sid)
            out[sid] = (ctx.tz, ctx.rules)
        else:
            known = store.tenant(conn, sid)
            out[sid] = (known[1] if known else "UTC", Rules())
    return out


def _recorded_days(conn: Connection, zones: Mapping[str, tuple[str, Rules]], start: date,
                   end: date) -> tuple[dict[str, StationDays], set[tuple[str, date]]]:
    """The connected days of every store of ``zones`` in [start, end] that the pipeline rolled up, from their
    stored records (:func:`analytics.store.load_connected_days`: two queries by the primary keys, a few hundred
    rows a store-day), and every (store, day) rolled up (with or without stations)."""
    heard, rows = store.load_connected_days(conn, list(zones), start, end)
    codes, starts, ends = device_codes([r[2] for r in rows]), to_ms([r[3] for r in rows]), to_ms([r[4] for r in rows])
    staff = np.array([r[5] for r in rows], dtype=bool)
    at: dict[tuple[str, date], list[int]] = {}
    for n, r in enumerate(rows):
        at.setdefault((r[0], r[1]), []).append(n)
    out: dict[str, StationDays] = {sid: {} for sid in zones}
    for sid, d, stations in heard:
        i = np.array(at.get((sid, d), []), dtype=np.int64)
        day = recorded_day(ConnectedRecord(stations, codes[i], starts[i], ends[i], staff[i]))
        if day is not None and sid in zones:
            out[sid][d] = (day, day_bounds(d, zones[sid][0])[0])
    return out, {(sid, d) for sid, d, _n in heard}


def _station_days(conn: Connection, zones: Mapping[str, tuple[str, Rules]], start: date,
                  end: date, polled: Polled | None = None) -> dict[str, StationDays]:
    """The connected stations of every store of ``zones`` on each of its store-local days in [start, end] that has
    any, and an empty day (:func:`analytics.metrics.no_connected_day`: 0 connected, not None) on each day whose
    station list was read (``polled``) and held nobody: the days the pipeline rolled up as it stored them
    (:func:`_recorded_days`), the days it has not rolled up yet (today before its first roll-up, a store whose
    probes were not heard, a day rolled up before revision analytics_0007_connroll) made from their polls
    (:func:`analytics.metrics.connected_day`, with the store's rules) in **one** query for all those stores' days,
    by the partial index of the connected rows (a day's stations are a few thousand rows where its probes are
    millions); none when every day is rolled up."""
    if not zones:
        return {}
    out, rolled = _recorded_days(conn, zones, start, end)
    todo = {sid: [d for d in _days(start, end) if (sid, d) not in rolled] for sid in zones}
    todo = {sid: days for sid, days in todo.items() if days}
    if todo:
        lo_ms = min(day_bounds(days[0], zones[sid][0])[0] for sid, days in todo.items())
        hi_ms = max(day_bounds(days[-1], zones[sid][0])[1] for sid, days in todo.items())
        ts, devs, where = store.load_connected(conn, list(todo), lo_ms / 1000.0, hi_ms / 1000.0)
        names, which = np.unique(np.array(where, dtype=str), return_inverse=True)
        ms = to_ms(ts)
        order = np.lexsort((ms, which))  # by store, then time: each store's rows a slice, each day a slice of it
        ms, codes, which = ms[order], device_codes(devs)[order], which[order]
        for i, sid in enumerate(names.tolist()):
            if sid not in todo:
                continue
            tz, rules = zones[sid]
            a, b = np.searchsorted(which, i), np.searchsorted(which, i, side="right")
            s_ms, s_codes = ms[a:b], codes[a:b]
            for d in todo[sid]:
                lo, hi = day_bounds(d, tz)
                i0, i1 = np.searchsorted(s_ms, lo), np.searchsorted(s_ms, hi)
                if i1 > i0:
                    out[sid][d] = (connected_day(s_ms[i0:i1], s_codes[i0:i1], rules, lo), lo)
    for sid, (got, _last) in (polled or {}).items():
        for d in _days(start, end):
            lo, hi = day_bounds(d, zones[sid][0])
            if d not in out[sid] and np.any((got >= lo // 1000) & (got < hi // 1000)):
                out[sid][d] = (no_connected_day(), lo)
    return {sid: dict(sorted(days.items())) for sid, days in out.items()}


def _until(days: StationDays, until: float | None) -> StationDays:
    """The connected days up to ``until`` (epoch seconds; ``None``: all): the days that began before it, each with
    its visits that began before it (:func:`analytics.metrics.connected_until`)."""
    if until is None:
        return days
    cut = int(until * 1000)
    return {d: (connected_until(day, cut), a) for d, (day, a) in days.items() if a < cut}


def _connected(conn: Connection, zones: Mapping[str, tuple[str, Rules]], store_id: str, start: date, end: date,
               rolled: set[date], last: float | None, until: float | None = None
               ) -> tuple[Connected, StationDays, tuple[I64, float | None]]:
    """The ``connected`` block of [start, end] and the days it was made of (:func:`_station_days`): the days rolled
    up as the pipeline stored them, the others computed at report time from their connected-station sightings (one
    query), per store-local day with the store's rules (``zones``: the store's, :func:`_zones`). Its
    ``calibration`` pairs the
    stations with the probe devices of their associations (one more query by a partial index) and compares them
    with the stored visits of those devices, on the days in ``rolled`` only (the days whose figures the pipeline
    has rolled up: elsewhere no visit is stored yet). ``until``: the block up to that time (:func:`_until`); the
    days returned stay whole. ``coverage`` and ``last_poll``: the AP's polls over the range (:func:`_polled`,
    :func:`_cover`) up to the store's newest sighting or poll (``last``: its newest sighting) or ``until``;
    returned too, for the hours."""
    tz = zones[store_id][0]
    polled = _polled(conn, zones, start, end)
    whole = _station_days(conn, zones, start, end, polled).get(store_id, {})
    mine = polled[store_id]
    counts = _cover(mine, zones[store_id], start, end, _cut(until, last, mine[1]))
    days = _until(whole, until)
    lo_ms, hi_ms = day_bounds(start, tz)[0], day_bounds(end, tz)[1]
    pairs: list[PairDay] = []
    p_ts, p_dev, p_station = store.station_pairs(conn, store_id, lo_ms / 1000.0, hi_ms / 1000.0) if (
        days and rolled) else (np.zeros(0), [], [])
    p_ms, p_codes, p_st = to_ms(p_ts), device_codes(p_dev), device_codes(p_station)
    dwell: dict[date, tuple[list[str], list[float]]] = {}
    for d, dev, s in store.visitor_dwell(conn, store_id, start, end, p_dev) if p_dev else []:
        dwell.setdefault(d, ([], []))[0].append(dev)
        dwell[d][1].append(s)
    for d, (day, _a) in days.items():
        if d in rolled:
            a, b = day_bounds(d, tz)
            psel = (p_ms >= a) & (p_ms < b)
            v_dev, v_s = dwell.get(d, ([], []))
            pairs.append(pair_day(p_codes[psel], p_st[psel], device_codes(v_dev),
                                  np.round(np.array(v_s, dtype=np.float64) * 1000).astype(np.int64),
                                  day.device, day.dwell_ms))
    return connected_figures([day for day, _a in days.values()], calibration(pairs),
                             coverage=coverage([counts] if counts else []), last_poll=mine[1]), whole, mine


def _connected_hours(days: StationDays, last: float | None, polled: I64, tz: str) -> list[int | None]:
    """``hourly_connected``: connected visitors present per hour of the day (:func:`analytics.metrics.
    connected_hours`), summed per hour over the days that have stations or polls. On a day with polls (``polled``:
    the slots read) an hour in which the AP's station list was not read is ``None`` (not heard: a poller down, not
    nobody connected); on a day without (before the polls were recorded) an hour of a day without any station, or
    starting after the store's newest sighting (not heard yet), is ``None``."""
    out: list[int | None] = [None] * 24
    for d, (day, a) in days.items():
        counts = connected_hours(day, a)
        read = heard_hours(polled, a // 1000, day_bounds(d, tz)[1] // 1000) if len(polled) else [False] * 24
        if any(read):
            heard: list[int | None] = [n if ok else None for n, ok in zip(counts, read)]
        else:
            heard = [n if last is not None and (a + h * HOUR_MS) / 1000.0 <= last else None
                     for h, n in enumerate(counts)]
        out = _add_hours(out, heard)
    return out


def store_day(engine: Engine, store_id: str, day: date, cfg: Config | None = None) -> StoreDay:
    """One store-day: the scalar metrics, dwell and loyalty buckets, and 24 store-local hourly counts; and apart,
    ``connected``: the connected shoppers (:func:`_connected`; ``cfg`` gives the store's visit rules; with the
    AP's ``coverage`` and ``last_poll``) and ``hourly_connected`` (:func:`_connected_hours`)."""
    with engine.connect() as conn:
        rows, (figures,) = _per_day(conn, store_id, day, day)
        last = store.last_sighting(conn, store_id)
        hours = _hours(conn, store_id, day, day, last)
        zones = _zones(conn, cfg, [store_id])
        tz = zones[store_id][0]
        connected, station_days, (polled, _p) = _connected(conn, zones, store_id, day, day, set(rows), last)
    out = {"store": store_id} | figures
    out["hourly_visitors"], out["hourly_passersby"] = hours.get(day) or _no_hours()
    out["hourly_connected"] = _connected_hours(station_days, last, polled, tz)
    out["uncertainty"] = uncertainty(out, peak_hour(out["hourly_visitors"], out["hourly_passersby"]))
    out["connected"] = connected
    return cast(StoreDay, out)


def _merge(days: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: _sum([d[k] for d in days]) for k in _SUMMED}
    for k in PORTAL:
        out[k] = out[k] or 0
    out["capture_rate"] = _rate(out["visitors"], out["passersby"])
    out["median_dwell_s"] = _weighted_median([(d["median_dwell_s"], d["visits"]) for d in days
                                              if d["median_dwell_s"] is not None and d["visits"]])
    out["dwell_buckets"] = {k: _sum([d["dwell_buckets"][k] for d in days]) for k in DWELL_LABELS}
    out["loyalty_buckets"] = {k: _sum([d["loyalty_buckets"][k] for d in days]) for k in LOYALTY_LABELS}
    return out


def _add_hours(a: list[int | None], b: list[int | None]) -> list[int | None]:
    return [y if x is None else x if y is None else x + y for x, y in zip(a, b)]


def store_range(engine: Engine, store_id: str, start: date, end: date, cfg: Config | None = None,
                until: float | None = None) -> StoreRange:
    """The same keys as :func:`store_day` summed over [start, end] (hourly counts summed per hour of day over the
    days that have them), plus ``days``: one dict per day with ``date`` and the scalar metrics. ``connected``: the
    days' connected visitors summed, the median and buckets over all the range's connected visits.

    ``until`` (epoch seconds): the figures and ``connected`` only up to that time (:func:`_per_day`), to set beside
    a current period that is not over (today so far against last week's same weekday to the same time). The hourly
    lists stay whole days: they show the rest of the day to come."""
    with engine.connect() as conn:
        zones = _zones(conn, cfg, [store_id])
        tz = zones[store_id][0]
        rows, per_day = _per_day(conn, store_id, start, end, until, tz)
        last = store.last_sighting(conn, store_id)
        hours = _hours(conn, store_id, start, end, last)
        connected, station_days, (polled, _p) = _connected(conn, zones, store_id, start, end, set(rows), last,
                                                           until)
    hv, hp = _no_hours()
    summed = 0
    for d in _days(start, end):
        if d in rows and d in hours:  # a day's hours count only with its daily row, as in the daily figures
            v, p = hours[d]
            hv, hp = _add_hours(hv, v), _add_hours(hp, p)
            summed += 1
    out = {"store": store_id, "start": start.isoformat(), "end": end.isoformat()} | _merge(per_day)
    out["hourly_visitors"], out["hourly_passersby"] = hv, hp
    out["hourly_connected"] = _connected_hours(station_days, last, polled, tz)
    out["days"] = [{k: d[k] for k in ("date", *SCALARS)} for d in per_day]
    out["uncertainty"] = uncertainty(out, peak_hour(hv, hp, summed))
    out["connected"] = connected
    return cast(StoreRange, out)


def _mall_names(conn: Connection) -> dict[str, str]:
    if not sa.inspect(conn).has_table("malls"):
        return {}
    t = sa.table("malls", sa.column("id"), sa.column("name"))
    return {str(i): str(n) for i, n in conn.execute(sa.select(t.c.id, t.c.name)).all()}


def _store_names(conn: Connection) -> dict[str, tuple[str, str]]:
    if not sa.inspect(conn).has_table("stores"):
        return {}
    t = sa.table("stores", sa.column("id"), sa.column("name"), sa.column("mall_id"))
    return {str(i): (str(n), str(m)) for i, n, m in conn.execute(sa.select(t.c.id, t.c.name, t.c.mall_id)).all()}


def _mall_store_ids(conn: Connection, mall_id: str, start: date, end: date, names: Mapping[str, tuple[str, str]]
                    ) -> list[str]:
    """The mall's stores: those the stores table puts in it, and those with a daily rollup of it in the range."""
    r = store.rollups.c
    ids = {s for s, (_, m) in names.items() if m == mall_id}
    ids |= set(conn.execute(sa.select(r.store).where(r.mall == mall_id, r.period == "1d", r.day >= start,
                                                     r.day <= end).distinct()).scalars().all())
    return sorted(ids)


def _mall_connected_days(stations: Mapping[str, StationDays], store_ids: Sequence[str], start: date,
                         end: date) -> list[ConnectedDay]:
    """The mall's connected days: on each day that any of its stores has stations, the stores' stations together
    (:func:`analytics.metrics.mall_connected_day`: a station at two stores of the mall is one connected visitor)."""
    out = []
    for d in _days(start, end):
        parts = [stations[sid][d][0] for sid in store_ids if d in stations.get(sid, {})]
        if parts:
            out.append(mall_connected_day(parts))
    return out


def _mall_share(cut: Sequence[Mapping[str, Any]], whole: Sequence[Mapping[str, Any]], key: str) -> float:
    """The share of a day's ``key`` that its stores had counted by a time of it (their figures up to then over
    their whole day's; 0 without any)."""
    total = sum(int(w[key]) for w in whole)
    return sum(int(c[key] or 0) for c in cut) / total if total else 0.0


def _mall(conn: Connection, mall_id: str, store_ids: Sequence[str], start: date, end: date,
          names: Mapping[str, tuple[str, str]], mall_names: Mapping[str, str],
          stations: Mapping[str, StationDays], zones: Mapping[str, tuple[str, Rules]] | None = None,
          until: float | None = None, polled: Polled | None = None
          ) -> tuple[MallRange, list[ConnectedDay], list[tuple[int, int]], list[float]]:
    """The mall's report over [start, end] (``stations``: its stores' connected days, :func:`_station_days`), its
    connected mall-days, and its stores' (slots polled, slots) and newest polls (the operator sums them; ``polled``:
    the AP's polls, :func:`_polled`: each store's ``connected`` and the totals' carry ``coverage`` over the stores
    with polls in the range, and ``last_poll``). ``until`` (epoch seconds; ``zones`` the stores' time zones):
    the figures up to that time, as :func:`store_range`'s; the mall's totals (each shopper once) of that time's day
    are known for whole days only, so they are scaled by the share of the day's figure that its stores had counted
    by then (:func:`_mall_share`): an estimate, where the stores' rows are exact. The transitions stay whole days."""
    zones, polled = zones or {}, polled or {}
    stations = {sid: _until(days, until) for sid, days in stations.items()}
    stores, whole_rows, cut_rows = [], [], []
    counts: list[tuple[int, int]] = []
    last_polls: list[float] = []
    last = datetime.fromtimestamp(until, ZoneInfo(zones.get(store_ids[0], ("UTC",))[0] if store_ids else "UTC")
                                  ).date() if until is not None else None
    for sid in store_ids:
        rows, per_day = _per_day(conn, sid, start, end, until, zones.get(sid, ("UTC",))[0])
        if last is not None and last in rows:
            whole_rows.append(rows[last])
            cut_rows.append(per_day[(last - start).days])
        merged = _merge(per_day)
        row = {"id": sid, "name": names.get(sid, (sid, mall_id))[0]} | {k: merged[k] for k in SCALARS}
        row["uncertainty"] = uncertainty(row)
        # the store's own stations; their calibration is in the store's own report (it reads two more tables)
        mine = polled.get(sid, (slots([]), None))
        n = None
        if mine[1] is not None and sid in zones:  # the newest sighting is read for the stores with polls only
            n = _cover(mine, zones[sid], start, end, _cut(until, store.last_sighting(conn, sid), mine[1]))
            last_polls.append(mine[1])
        counts += [n] if n else []
        row["connected"] = connected_figures([day for day, _a in stations.get(sid, {}).values()],
                                             coverage=coverage([n] if n else []), last_poll=mine[1])
        stores.append(row)
    m = store.mall_days.c
    mrows = conn.execute(sa.select(store.mall_days).where(m.mall == mall_id, m.day >= start, m.day <= end)
                         ).mappings().all()
    keys = ("visitors", "passersby", "staff_excluded")
    counted = [{k: int(x[k]) for k in keys} for x in mrows if last is None or x["day"] < last]
    counted += [{k: round(int(x[k]) * _mall_share(cut_rows, whole_rows, k)) for k in keys}
                for x in mrows if x["day"] == last]
    # the mall's shoppers once across its stores; None when none of its stores has sensor data in the range (a
    # mall-day rolled up before any store was heard is not an empty mall)
    heard = any(s["visitors"] is not None for s in stores)
    totals: dict[str, Any] = {k: _sum([x[k] for x in counted]) if heard else None for k in keys}
    totals["capture_rate"] = _rate(totals["visitors"], totals["passersby"])
    for k in PORTAL:
        totals[k] = sum(s[k] for s in stores)
    totals["visits"] = _sum([s["visits"] for s in stores])
    totals["uncertainty"] = uncertainty(totals)
    mall_days = _mall_connected_days(stations, store_ids, start, end)
    totals["connected"] = connected_figures(mall_days, coverage=coverage(counts),
                                            last_poll=max(last_polls, default=None))
    t = store.mall_transitions.c
    trans = conn.execute(sa.select(t.src, t.dst, sa.func.sum(t.count)).where(
        t.mall == mall_id, t.day >= start, t.day <= end).group_by(t.src, t.dst)).all()
    transitions = sorted(({"from": a, "to": b, "count": int(n)} for a, b, n in trans),
                         key=lambda x: (-x["count"], x["from"], x["to"]))
    return cast(MallRange, {"id": mall_id, "name": mall_names.get(mall_id, mall_id), "start": start.isoformat(),
                            "end": end.isoformat(), "stores": stores, "totals": totals,
                            "transitions": transitions}), mall_days, counts, last_polls


def mall_range(engine: Engine, mall_id: str, start: date, end: date, cfg: Config | None = None,
               until: float | None = None) -> MallRange:
    """A mall over [start, end]: its stores' scalar metrics, ``totals`` (a shopper counted once per day however
    many stores they entered; summed over days) and ``transitions`` ``[{from, to, count}]``. Each store row and the
    totals carry ``uncertainty`` (:mod:`analytics.bands`, basis ``linked_devices``) and, apart, ``connected`` (the
    stores' own stations, exact; a station at two stores of the mall once in the totals): the stored connected
    visits of the days rolled up, the polls of the others in one query for all the stores (``cfg`` gives each
    store's visit rules for those; :func:`_station_days`). ``until``: up to that time (:func:`_mall`)."""
    with engine.connect() as conn:
        names = _store_names(conn)
        ids = _mall_store_ids(conn, mall_id, start, end, names)
        zones = _zones(conn, cfg, ids)
        polled = _polled(conn, zones, start, end)
        stations = _station_days(conn, zones, start, end, polled)
        return _mall(conn, mall_id, ids, start, end, names, _mall_names(conn), stations, zones, until, polled)[0]


def operator_range(engine: Engine, start: date, end: date, cfg: Config | None = None,
                   until: float | None = None) -> OperatorRange:
    """Every mall over [start, end] (``malls``: :func:`mall_range`) and the operator's ``totals`` (sums of the
    malls', with their ``uncertainty`` and ``connected``); the connected stations of every store read together
    (:func:`_station_days`). ``until``: up to that time (:func:`_mall`)."""
    with engine.connect() as conn:
        names, mall_names = _store_names(conn), _mall_names(conn)
        ids = set(mall_names) | set(conn.execute(sa.select(store.rollups.c.mall).distinct()).scalars().all())
        stores = {m: _mall_store_ids(conn, m, start, end, names) for m in sorted(ids)}
        zones = _zones(conn, cfg, sorted({s for v in stores.values() for s in v}))
        polled = _polled(conn, zones, start, end)
        stations = _station_days(conn, zones, start, end, polled)
        made = [_mall(conn, m, stores[m], start, end, names, mall_names, stations, zones, until, polled)
                for m in sorted(ids)]
    malls = [m for m, _days, _c, _l in made]
    keys = ("visitors", "passersby", "staff_excluded", "visits")
    totals: dict[str, Any] = {k: _sum([cast(Mapping[str, Any], m["totals"])[k] for m in malls]) for k in keys}
    for k in PORTAL:
        totals[k] = sum(cast(Mapping[str, int], m["totals"])[k] for m in malls)
    totals["capture_rate"] = _rate(totals["visitors"], totals["passersby"])
    totals["uncertainty"] = uncertainty(totals)
    # the malls' connected days together: visitors summed over malls and days, the median over all their visits
    totals["connected"] = connected_figures([d for _m, days, _c, _l in made for d in days],
                                            coverage=coverage([c for _m, _d, cs, _l in made for c in cs]),
                                            last_poll=max((t for _m, _d, _c, ts in made for t in ts), default=None))
    return cast(OperatorRange, {"start": start.isoformat(), "end": end.isoformat(), "malls": malls, "totals": totals})


def last_report(engine: Engine, store_id: str) -> float | None:
    """Epoch seconds of the newest sighting of the store's sensors (None: never heard)."""
    with engine.connect() as conn:
        return store.last_sighting(conn, store_id)


# -- live occupancy: the one report read from the sightings themselves (the last minutes), not from rollups


def _staff_now(conn: Connection, store_id: str, today: date, rules: Rules) -> U64:
    """Staff at the store right now: the manual list, habitual staff of the last 7 days, and the devices the
    pipeline flagged staff today already."""
    d = store.device_days.c
    rows = conn.execute(sa.select(d.device, d.day, d.staff, d.auto_staff).where(
        d.store == store_id, d.day >= today - timedelta(days=7), d.day <= today,
        sa.or_(d.staff, d.auto_staff))).all()
    past = [(r[0], (today - r[1]).days) for r in rows if r[3] and r[1] < today]
    hist = History(staff_device=device_codes([p[0] for p in past]),
                   staff_age=np.array([p[1] for p in past], dtype=np.int64))
    return np.union1d(known_staff(hist, rules), device_codes([r[0] for r in rows if r[2] and r[1] == today]))


def _present(conn: Connection, cfg: Config, store_id: str, now: float, window_s: int) -> tuple[Present, float | None]:
    ctx = context(conn, cfg, store_id)
    # an indexed range on sightings.ts: the look-back only (window + one visit gap)
    ts, devs, rssi = store.load_sightings(conn, store_id, now - lookback_s(ctx.rules, window_s), now + 0.001)
    staff = _staff_now(conn, store_id, local_day(now, ctx.tz), ctx.rules)
    connected = device_codes(store.connected_devices(conn, store_id, now - window_s, now + 0.001))
    p = present(to_ms(ts), device_codes(devs), rssi, ctx.rules, round(now * 1000), window_s, staff, connected)
    last = float(ts.max()) if len(ts) else store.last_sighting(conn, store_id)
    return p, last


def store_live(engine: Engine, cfg: Config, store_id: str, now: float, window_s: int = WINDOW_S) -> dict[str, Any]:
    """Live occupancy of one store at ``now`` (:mod:`analytics.occupancy`)."""
    with engine.connect() as conn:
        p, last = _present(conn, cfg, store_id, now, window_s)
    return {"store": store_id, **figures(p, now=now, window_s=window_s, last_sighting=last)}


def mall_live(engine: Engine, cfg: Config, mall_id: str, store_ids: Sequence[str], now: float,
              window_s: int = WINDOW_S) -> dict[str, Any]:
    """Live occupancy of a mall (its stores' devices, each once) and of each of its stores."""
    parts: list[Present] = []
    stores: list[dict[str, Any]] = []
    lasts: list[float] = []
    with engine.connect() as conn:
        for sid in store_ids:
            p, last = _present(conn, cfg, sid, now, window_s)
            parts.append(p)
            if last is not None:
                lasts.append(last)
            stores.append({"store": sid, **figures(p, now=now, window_s=window_s, last_sighting=last)})
    total = figures(union(parts), now=now, window_s=window_s, last_sighting=max(lasts) if lasts else None)
    return {"mall": mall_id, **total, "stores": stores}
