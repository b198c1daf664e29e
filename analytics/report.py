"""Reports for the dashboards and the CLI (an edge: reads the rollup tables; see docs/CONTRACTS.md).

Every function reads rollups written by the pipeline (``analytics.pipeline``); none recomputes from sightings.
Dates are store-local days and ranges include both ends. A day without rollups reports zeros.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics import store
from analytics.bands import Uncertainty, uncertainty
from analytics.metrics import DWELL_FIELDS, DWELL_LABELS, LOYALTY_LABELS

SCALARS = ("visitors", "passersby", "visits", "capture_rate", "median_dwell_s", "new_visitors", "repeat_visitors",
           "staff_excluded", "wifi_logins", "new_members")
_SUMMED = tuple(k for k in SCALARS if k not in ("capture_rate", "median_dwell_s"))


# -- the contract with the dashboards and the CLI (docs/CONTRACTS.md): what each report function returns

class Figures(TypedDict):
    """The scalar metrics of a store over a day or a range."""

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


class DayFigures(Figures):
    """One day's figures with the day's date."""

    date: str


class Buckets(Figures):
    """The figures plus the dwell-time and loyalty histograms (label → count)."""

    dwell_buckets: dict[str, int]
    loyalty_buckets: dict[str, int]


class StoreDay(Buckets):
    store: str
    #: the calibrated dwell estimate, the error bands and each figure's basis (analytics.bands)
    uncertainty: Uncertainty
    date: str
    hourly_visitors: list[int]
    hourly_passersby: list[int]


class StoreRange(Buckets):
    store: str
    uncertainty: Uncertainty
    start: str
    end: str
    hourly_visitors: list[int]
    hourly_passersby: list[int]
    days: list[DayFigures]


class MallStore(Figures):
    """One store of a mall over the range."""

    id: str
    name: str


class MallTotals(TypedDict):
    """A mall's (or the operator's) totals: a shopper counted once per day however many stores they entered."""

    visitors: int
    passersby: int
    staff_excluded: int
    capture_rate: float
    wifi_logins: int
    new_members: int
    visits: int


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


def _rate(v: int, p: int) -> float:
    return v / (v + p) if v + p else 0.0


def _weighted_median(pairs: Sequence[tuple[float, int]]) -> float:
    """Median of values each repeated ``weight`` times (the visit-weighted median of daily medians)."""
    pairs = sorted((v, w) for v, w in pairs if w > 0)
    total = sum(w for _, w in pairs)
    if total == 0:
        return 0.0
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


def _day_row(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {k: 0 for k in _SUMMED} | {"capture_rate": 0.0, "median_dwell_s": 0.0,
                                          "dwell_buckets": {k: 0 for k in DWELL_LABELS},
                                          "loyalty_buckets": {k: 0 for k in LOYALTY_LABELS}}
    out: dict[str, Any] = {k: int(row[k]) for k in _SUMMED}
    out["capture_rate"] = float(row["capture_rate"])
    out["median_dwell_s"] = float(row["median_dwell_s"])
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


def _hours(conn: Connection, store_id: str, start: date, end: date) -> dict[date, tuple[list[int], list[int]]]:
    """Visitors and passers-by per hour of the day (a day's ``1h`` rows in order of start) of each day in
    [start, end] that has ``1h`` rows, in one query for the whole range (only the columns needed: an hourly row
    per day and hour is most of what a long range reads)."""
    r = store.rollups.c
    lo, hi = _key_range(start, end)
    rows = conn.execute(sa.select(r.day, r.visitors, r.passersby).where(
        r.store == store_id, r.period == "1h", r.start >= lo, r.start < hi, r.day >= start, r.day <= end
    ).order_by(r.start)).all()
    out: dict[date, tuple[list[int], list[int]]] = {}
    seen: dict[date, int] = {}
    for day, v, p in rows:
        i = seen.get(day, 0)
        seen[day] = i + 1
        if i >= 24:
            continue
        hv, hp = out.setdefault(day, ([0] * 24, [0] * 24))
        hv[i], hp[i] = int(v), int(p)
    return out


def _zero_hours() -> tuple[list[int], list[int]]:
    return [0] * 24, [0] * 24


def store_day(engine: Engine, store_id: str, day: date) -> StoreDay:
    """One store-day: the scalar metrics, dwell and loyalty buckets, and 24 store-local hourly counts."""
    with engine.connect() as conn:
        daily, hours = _store_days(conn, store_id, day, day), _hours(conn, store_id, day, day)
    out = {"store": store_id, "date": day.isoformat()} | _day_row(daily.get(day))
    out["hourly_visitors"], out["hourly_passersby"] = hours.get(day) or _zero_hours()
    out["uncertainty"] = uncertainty(out)
    return cast(StoreDay, out)


def _merge(days: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(d[k] for d in days) for k in _SUMMED}
    out["capture_rate"] = _rate(out["visitors"], out["passersby"])
    out["median_dwell_s"] = _weighted_median([(d["median_dwell_s"], d["visits"]) for d in days])
    out["dwell_buckets"] = {k: sum(d["dwell_buckets"][k] for d in days) for k in DWELL_LABELS}
    out["loyalty_buckets"] = {k: sum(d["loyalty_buckets"][k] for d in days) for k in LOYALTY_LABELS}
    return out


def store_range(engine: Engine, store_id: str, start: date, end: date) -> StoreRange:
    """The same keys as :func:`store_day` summed over [start, end] (hourly counts summed per hour of day), plus
    ``days``: one dict per day with ``date`` and the scalar metrics."""
    with engine.connect() as conn:
        rows, hours = _store_days(conn, store_id, start, end), _hours(conn, store_id, start, end)
    per_day = [{"date": d.isoformat()} | _day_row(rows.get(d)) for d in _days(start, end)]
    hv, hp = _zero_hours()
    for d in _days(start, end):
        if d in rows and d in hours:  # a day's hours count only with its daily row, as in the daily figures
            v, p = hours[d]
            hv, hp = [a + b for a, b in zip(hv, v)], [a + b for a, b in zip(hp, p)]
    out = {"store": store_id, "start": start.isoformat(), "end": end.isoformat()} | _merge(per_day)
    out["hourly_visitors"], out["hourly_passersby"] = hv, hp
    out["days"] = [{k: d[k] for k in ("date", *SCALARS)} for d in per_day]
    out["uncertainty"] = uncertainty(out)
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


def _mall(conn: Connection, mall_id: str, start: date, end: date) -> MallRange:
    r = store.rollups.c
    names = _store_names(conn)
    ids = {s for s, (_, m) in names.items() if m == mall_id}
    ids |= set(conn.execute(sa.select(r.store).where(r.mall == mall_id, r.period == "1d", r.day >= start,
                                                     r.day <= end).distinct()).scalars().all())
    stores = []
    for sid in sorted(ids):
        rows = _store_days(conn, sid, start, end)
        merged = _merge([_day_row(rows.get(d)) for d in _days(start, end)])
        stores.append({"id": sid, "name": names.get(sid, (sid, mall_id))[0]} | {k: merged[k] for k in SCALARS})
    m = store.mall_days.c
    mrows = conn.execute(sa.select(store.mall_days).where(m.mall == mall_id, m.day >= start, m.day <= end)
                         ).mappings().all()
    totals: dict[str, Any] = {k: sum(int(x[k]) for x in mrows) for k in ("visitors", "passersby", "staff_excluded")}
    totals["capture_rate"] = _rate(totals["visitors"], totals["passersby"])
    for k in ("wifi_logins", "new_members", "visits"):
        totals[k] = sum(s[k] for s in stores)
    t = store.mall_transitions.c
    trans = conn.execute(sa.select(t.src, t.dst, sa.func.sum(t.count)).where(
        t.mall == mall_id, t.day >= start, t.day <= end).group_by(t.src, t.dst)).all()
    transitions = sorted(({"from": a, "to": b, "count": int(n)} for a, b, n in trans),
                         key=lambda x: (-x["count"], x["from"], x["to"]))
    return cast(MallRange, {"id": mall_id, "name": _mall_names(conn).get(mall_id, mall_id), "start": start.isoformat(),
                            "end": end.isoformat(), "stores": stores, "totals": totals, "transitions": transitions})


def mall_range(engine: Engine, mall_id: str, start: date, end: date) -> MallRange:
    """A mall over [start, end]: its stores' scalar metrics, ``totals`` (a shopper counted once per day however
    many stores they entered; summed over days) and ``transitions`` ``[{from, to, count}]``."""
    with engine.connect() as conn:
        return _mall(conn, mall_id, start, end)


def operator_range(engine: Engine, start: date, end: date) -> OperatorRange:
    """Every mall over [start, end] (``malls``: :func:`mall_range` without the per-store transitions) and the
    operator's ``totals`` (sums of the malls')."""
    with engine.connect() as conn:
        ids = set(_mall_names(conn)) | set(conn.execute(sa.select(store.rollups.c.mall).distinct()).scalars().all())
        malls = [_mall(conn, m, start, end) for m in sorted(ids)]
    keys = ("visitors", "passersby", "staff_excluded", "wifi_logins", "new_members", "visits")
    totals: dict[str, Any] = {k: sum(cast(Mapping[str, int], m["totals"])[k] for m in malls) for k in keys}
    totals["capture_rate"] = _rate(totals["visitors"], totals["passersby"])
    return cast(OperatorRange, {"start": start.isoformat(), "end": end.isoformat(), "malls": malls, "totals": totals})


def last_report(engine: Engine, store_id: str) -> float | None:
    """Epoch seconds of the newest sighting of the store's sensors (None: never heard)."""
    with engine.connect() as conn:
        return store.last_sighting(conn, store_id)
