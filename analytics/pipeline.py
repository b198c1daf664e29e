"""The analytics jobs (an edge): read a store-day from the database, run the pure core, write the results.

Each job is idempotent — it recomputes a whole store-day (or mall-day) from the stored sightings and replaces or
upserts rows by their natural keys inside one transaction, serialized per key — so a Celery task that runs twice
(redelivered after a worker died, retried after an error) leaves the same rows as one run. The Celery tasks in
``analytics.tasks`` and the in-process loop of ``keliu analytics run`` both call these functions.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analytics import late as late_days
from analytics import store
from analytics.days import day_bounds, local_day
from analytics.metrics import (
    DWELL_FIELDS,
    LOYALTY_LABELS,
    ConnectedRecord,
    History,
    StoreDay,
    connected_record,
    mall_day,
    store_day,
)
from analytics.visits import I64, Rules, device_codes, summarize, to_ms
from keliu import db
from keliu.config import Config
from sensor import store as sensor_store
from sensor.records import Sighting
from sensor.stations import poll_from_dict

log = logging.getLogger(__name__)
UNKNOWN_MALL = "-"


@dataclass(frozen=True)
class StoreContext:
    store: str
    mall: str
    tz: str
    rules: Rules


def context(conn: Connection, cfg: Config, store_id: str) -> StoreContext:
    """Mall and time zone of a store: the tenants table, else the configuration, else the default zone."""
    known = store.tenant(conn, store_id)
    if known is None:
        configured = next((s for s in cfg.stores if s.id == store_id), None)
        known = (configured.mall, configured.timezone) if configured else (UNKNOWN_MALL, cfg.timezone)
    return StoreContext(store_id, known[0], known[1], cfg.analytics.rules_for(store_id))


def history(conn: Connection, store_id: str, day: date, rules: Rules) -> History:
    """The store's earlier days (visits and automatic staff flags) before ``day``."""
    d = store.device_days.c
    rows = conn.execute(sa.select(d.device, d.day, d.visited, d.auto_staff).where(
        d.store == store_id, d.day >= day - timedelta(days=rules.history_days), d.day < day,
        sa.or_(d.visited, d.auto_staff))).all()
    vis = [(r[0], (day - r[1]).days) for r in rows if r[2]]
    stf = [(r[0], (day - r[1]).days) for r in rows if r[3]]
    return History(device_codes([v[0] for v in vis]), np.array([v[1] for v in vis], dtype=np.int64),
                   device_codes([s[0] for s in stf]), np.array([s[1] for s in stf], dtype=np.int64))


def _ms(values: Sequence[datetime]) -> I64:
    return np.array([int(v.timestamp() * 1000) for v in values], dtype=np.int64)


@dataclass(frozen=True)
class Computed:
    ctx: StoreContext
    day: date
    result: StoreDay
    names: dict[int, str]


def compute(conn: Connection, ctx: StoreContext, day: date) -> Computed | None:
    """The store-day's figures from its stored sightings (``ctx``: the store's, :func:`context`); None when there
    are none (purged or not yet seen)."""
    store_id = ctx.store
    start_ms, end_ms = day_bounds(day, ctx.tz)
    ts, devs, rssi = store.load_sightings(conn, store_id, start_ms / 1000, end_ms / 1000)
    if len(ts) == 0:
        return None
    codes = device_codes(devs)
    uniq, first = np.unique(codes, return_index=True)
    names = {int(c): devs[int(i)] for c, i in zip(uniq, first)}
    state = summarize(to_ms(ts), codes, rssi, ctx.rules, start_ms)
    utc = UTC
    logins, members = store.portal_times(conn, store_id, datetime.fromtimestamp(start_ms / 1000, utc),
                                         datetime.fromtimestamp(end_ms / 1000, utc))
    result = store_day(state, ctx.rules, start_ms, history(conn, store_id, day, ctx.rules), _ms(logins),
                       _ms(members))
    return Computed(ctx, day, result, names)


def _visit_rows(c: Computed, now: float) -> list[dict[str, Any]]:
    v = c.result.visits
    open_s = c.ctx.rules.open_ms / 1000  # a later run may still join the visit across a screen-off silence
    return [{"store": c.ctx.store, "device": c.names[int(d)], "start": s / 1000, "day": c.day, "end": e / 1000,
             "dwell_s": w / 1000, "staff": bool(st), "closed": e / 1000 + open_s <= now}
            for d, s, e, w, st in zip(v.device.tolist(), v.start.tolist(), v.end.tolist(), v.dwell_ms.tolist(),
                                      c.result.visit_staff.tolist())]


def _device_rows(c: Computed) -> list[dict[str, Any]]:
    d = c.result.devices
    return [{"store": c.ctx.store, "day": c.day, "device": c.names[int(dev)], "visited": bool(vi), "staff": bool(st),
             "auto_staff": bool(au), "loyalty": int(ly), "first_seen": f / 1000, "hours": int(h)}
            for dev, vi, st, au, ly, f, h in zip(d.device.tolist(), d.visited.tolist(), d.staff.tolist(),
                                                 d.auto_staff.tolist(), d.loyalty.tolist(), d.first.tolist(),
                                                 d.hours.tolist())]


def rollup_rows(c: Computed, now: float) -> list[dict[str, Any]]:
    rows = []
    for r in c.result.rollups:
        row: dict[str, Any] = {
            "store": c.ctx.store, "period": r.period, "start": r.start, "mall": c.ctx.mall, "day": c.day,
            "visitors": r.visitors, "passersby": r.passersby, "visits": r.visits, "new_visitors": r.new_visitors,
            "repeat_visitors": r.repeat_visitors, "staff_excluded": r.staff_excluded, "wifi_logins": r.wifi_logins,
            "new_members": r.new_members, "capture_rate": r.capture_rate, "median_dwell_s": r.median_dwell_s,
            "updated_at": now}
        row.update(zip(DWELL_FIELDS, r.dwell))
        row.update(("loyal_" + k, v) for k, v in zip(LOYALTY_LABELS, r.loyalty))
        rows.append(row)
    return rows


def connected(conn: Connection, ctx: StoreContext, day: date) -> tuple[ConnectedRecord, dict[int, str]]:
    """The store-day's connected stations from its polls (sightings of basis "connected", by their partial index),
    as the pipeline stores them, and the station ids by code."""
    start_ms, end_ms = day_bounds(day, ctx.tz)
    ts, devs, _stores = store.load_connected(conn, [ctx.store], start_ms / 1000, end_ms / 1000)
    codes = device_codes(devs)
    uniq, first = np.unique(codes, return_index=True)
    return connected_record(to_ms(ts), codes, ctx.rules, start_ms), {int(c): devs[int(i)] for c, i in zip(uniq,
                                                                                                          first)}


def connected_rows(ctx: StoreContext, day: date, record: ConnectedRecord, names: Mapping[int, str]) -> tuple[
        dict[str, Any], list[dict[str, Any]]]:
    """The ``connected_days`` row and the ``connected_visits`` rows of a store-day's record (pure)."""
    return {"store": ctx.store, "day": day, "stations": record.stations}, [
        {"store": ctx.store, "day": day, "device": names[d], "start": s / 1000, "end": e / 1000, "staff": st}
        for d, s, e, st in zip(record.device.tolist(), record.start.tolist(), record.end.tolist(),
                               record.staff.tolist())]


def write_connected(conn: Connection, ctx: StoreContext, day: date) -> int:
    """Replace the store-day's stored connected stations with those of its polls, in the caller's transaction
    (:func:`rollup_store`'s, under its store-day lock). Returns how many ``connected_visits`` rows."""
    day_row, visit_rows = connected_rows(ctx, day, *connected(conn, ctx, day))
    _replace_day(conn, store.connected_days, ctx.store, day, [day_row])
    _replace_day(conn, store.connected_visits, ctx.store, day, visit_rows)
    return len(visit_rows)


def _replace_day(conn: Connection, table: Any, store_id: str, day: date, rows: list[dict[str, Any]]) -> None:
    conn.execute(sa.delete(table).where(table.c.store == store_id, table.c.day == day))
    for start in range(0, len(rows), 2000):
        conn.execute(sa.insert(table), rows[start:start + 2000])


def close_visits(engine: Engine, cfg: Config, store_id: str, day: date, now: float) -> int:
    """Recompute the store-day's visits; those no later sighting can continue any more (``Rules.open_ms``) are
    marked closed. Returns how many."""
    with engine.begin() as conn:
        store.lock(conn, "store-day", store_id, day)
        c = compute(conn, context(conn, cfg, store_id), day)
        if c is None:
            return 0
        rows = _visit_rows(c, now)
        _replace_day(conn, store.visits, store_id, day, rows)
    return len(rows)


def detect_staff(engine: Engine, cfg: Config, store_id: str, day: date) -> int:
    """Flag the store-day's staff and fixed devices in ``device_days``. Returns how many devices are staff."""
    with engine.begin() as conn:
        store.lock(conn, "store-day", store_id, day)
        c = compute(conn, context(conn, cfg, store_id), day)
        if c is None:
            return 0
        _replace_day(conn, store.device_days, store_id, day, _device_rows(c))
    return int(c.result.devices.staff.sum())


def rollup_store(engine: Engine, cfg: Config, store_id: str, day: date, now: float) -> list[dict[str, Any]]:
    """Visits, device days, the 5-minute, hourly and daily rollups and the connected stations' visits of one
    store-day, in one transaction. Returns the rollup rows written (none when the day has no probe sightings: its
    stored rows are kept)."""
    with engine.begin() as conn:
        store.lock(conn, "store-day", store_id, day)
        # before the sightings are read: a late batch committed before this statement is read below, one committed
        # after keeps (or writes again) its record, so the day is rolled up again (sensor.store.mark_late)
        ctx = context(conn, cfg, store_id)
        start_ms, end_ms = day_bounds(day, ctx.tz)
        late = store.clear_late(conn, store_id, start_ms / 1000, end_ms / 1000)
        c = compute(conn, ctx, day)
        if c is None:
            return []
        _replace_day(conn, store.visits, store_id, day, _visit_rows(c, now))
        _replace_day(conn, store.device_days, store_id, day, _device_rows(c))
        rows = rollup_rows(c, now)
        db.upsert(conn, store.rollups, rows)
        write_connected(conn, c.ctx, day)
        if late:  # the mall-day reads these visits: its roll-up is dispatched after this commits
            store.mark_mall_late(conn, c.ctx.mall, day, store_id)
    return rows


def mall_stores(conn: Connection, mall_id: str, day: date) -> list[str]:
    t = sa.table("stores", sa.column("id"), sa.column("mall_id"))
    ids = set(conn.execute(sa.select(t.c.id).where(t.c.mall_id == mall_id)).scalars().all()) \
        if sa.inspect(conn).has_table("stores") else set()
    r = store.rollups.c
    ids |= set(conn.execute(sa.select(r.store).where(r.mall == mall_id, r.day == day).distinct()).scalars().all())
    return sorted(ids)


def rollup_mall(engine: Engine, mall_id: str, day: date, now: float) -> dict[str, Any]:
    """Shoppers of a mall-day counted once across its stores, and the store-to-store transitions."""
    with engine.begin() as conn:
        store.lock(conn, "mall-day", mall_id, day)
        store.clear_late_mall(conn, mall_id, day)  # before the visits are read, as rollup_store's
        stores = mall_stores(conn, mall_id, day)
        v, d = store.visits.c, store.device_days.c
        vrows = conn.execute(sa.select(v.store, v.device, v.start).where(v.store.in_(stores), v.day == day)).all()
        drows = conn.execute(sa.select(d.device, d.staff).where(d.store.in_(stores), d.day == day)).all()
        index = {s: i for i, s in enumerate(stores)}
        md = mall_day(np.array([index[r[0]] for r in vrows], dtype=np.int64), device_codes([r[1] for r in vrows]),
                      to_ms([r[2] for r in vrows]), device_codes([r[0] for r in drows]),
                      device_codes([r[0] for r in drows if r[1]]))
        row = {"mall": mall_id, "day": day, "visitors": md.visitors, "passersby": md.passersby,
               "staff_excluded": md.staff_excluded, "capture_rate": md.capture_rate, "updated_at": now}
        db.upsert(conn, store.mall_days, [row])
        t = store.mall_transitions
        conn.execute(sa.delete(t).where(t.c.mall == mall_id, t.c.day == day))
        trans = [{"mall": mall_id, "day": day, "src": stores[a], "dst": stores[b], "count": n}
                 for (a, b), n in sorted(md.transitions.items())]
        if trans:
            conn.execute(sa.insert(t), trans)
    return {**row, "transitions": trans}


def purge(engine: Engine, cfg: Config, now: float) -> dict[str, int]:
    """Delete raw sightings, visits, connected visits and the AP's poll records older than ``raw_retention_days``
    and device days older than ``history_days``. Rollups and mall days are kept."""
    a = cfg.analytics
    raw_cut = retention_cut(cfg, now)
    raw_day = datetime.fromtimestamp(raw_cut, UTC).date()
    hist_day = datetime.fromtimestamp(now - a.history_days * 86400, UTC).date()
    with engine.begin() as conn:
        n1 = conn.execute(sa.delete(sensor_store.sightings).where(sensor_store.sightings.c.ts < raw_cut)).rowcount
        n2 = conn.execute(sa.delete(store.visits).where(store.visits.c.day < raw_day)).rowcount
        n3 = conn.execute(sa.delete(store.device_days).where(store.device_days.c.day < hist_day)).rowcount
        # the connected visits go with the polls they were made of (as on a day never rolled up)
        conn.execute(sa.delete(store.connected_days).where(store.connected_days.c.day < raw_day))
        n4 = conn.execute(sa.delete(store.connected_visits).where(store.connected_visits.c.day < raw_day)).rowcount
        # the AP's polls go with the connected-station sightings they were read with
        polls = sensor_store.station_polls
        n5 = conn.execute(sa.delete(polls).where(polls.c.slot < raw_cut)).rowcount
    return {"sightings": n1, "visits": n2, "device_days": n3, "connected_visits": n4, "station_polls": n5}


def ingest(engine: Engine, batch: Iterable[Mapping[str, Any]], now: float | None = None) -> int:
    """Store a sensor batch (sighting dicts, as the sensor's Celery sink sends them), recording the late ones
    (``sensor.store.insert_sightings``). Idempotent on ``sid``."""
    return sensor_store.insert_sightings(engine, [Sighting(**dict(s)) for s in batch], now)


def ingest_polls(engine: Engine, records: Iterable[Mapping[str, Any]]) -> int:
    """Store the AP's poll records (dicts, as the sensor's Celery sink sends them; ``sensor.store.insert_polls``):
    merged by slot, idempotent. A record that is not one raises ValueError naming it, and nothing is stored."""
    polls = [poll_from_dict(r) for r in records]
    sensor_store.insert_polls(engine, polls)
    return len(polls)


def active_stores(engine: Engine, cfg: Config, since: float) -> list[str]:
    """Stores with sightings since ``since`` and every configured store."""
    s = sensor_store.sightings.c
    with engine.connect() as conn:
        seen = set(conn.execute(sa.select(s.store).where(s.ts >= since).distinct()).scalars().all())
    return sorted(seen | {st.id for st in cfg.stores})


def days_to_roll(tz: str, now: float, settle_s: float) -> list[date]:
    """Today, and yesterday while its last visits may still be closing (pure)."""
    today = local_day(now, tz)
    yesterday = local_day(now - settle_s, tz)
    return [yesterday, today] if yesterday != today else [today]


def retention_cut(cfg: Config, now: float) -> float:
    """The instant before which the purge deletes raw sightings (``raw_retention_days``)."""
    return now - cfg.analytics.raw_retention_days * 86400


def claim_late_stores(engine: Engine, cfg: Config, now: float, window: Collection[tuple[str, date]]) -> list[
        tuple[str, date]]:
    """Claim the late quarter hours not dispatched (``analytics.late.LEASE_S``), drop with a warning those of days
    past the raw retention, and return the late store-days to roll up beyond ``window``. Committed before the
    caller sends the roll-ups (an eager one runs at once); the roll-up deletes the records of its day."""
    with engine.begin() as conn:
        slots = store.claim(conn, sensor_store.late_sightings, now, late_days.LEASE_S)
        zones = {s: context(conn, cfg, s).tz for s in sorted({s for s, _ in slots})}
        plan = late_days.plan(late_days.store_days(slots, zones), window, retention_cut(cfg, now))
        for s, day in plan.drop:
            start_ms, end_ms = day_bounds(day, zones[s])
            n = store.clear_late(conn, s, start_ms / 1000, end_ms / 1000)
            log.warning("store %s, %s: %d quarter hours of sightings stored late not rolled up: the day is older "
                        "than raw_retention_days (%d), its sightings are purged", s, day, n,
                        cfg.analytics.raw_retention_days)
    return list(plan.roll)


def claim_late_malls(engine: Engine, cfg: Config, now: float, window: Collection[tuple[str, date]]) -> list[
        tuple[str, date]]:
    """The same for the mall-days recorded by late store-days' roll-ups; the mall-day's roll-up deletes them."""
    with engine.begin() as conn:
        rows = store.claim(conn, store.late_mall_days, now, late_days.LEASE_S)
        zones = {s: context(conn, cfg, s).tz for s in sorted({r[2] for r in rows})}
        plan = late_days.plan([(m, d, zones[s]) for m, d, s in rows], window, retention_cut(cfg, now))
        for mall, day in plan.drop:
            store.clear_late_mall(conn, mall, day)
            log.warning("mall %s, %s: not rolled up again after a late store-day: the day is older than "
                        "raw_retention_days (%d), its visits are purged", mall, day, cfg.analytics.raw_retention_days)
    return list(plan.roll)
