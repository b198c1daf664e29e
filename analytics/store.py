"""Analytics storage (an edge): the tables the pipeline reads and writes. The raw sightings it reads are the sensor's
own table (``sensor.store``).

Every table has a natural key (store, day, device; store, period, start; mall, day) and is written with
upserts or replaced per store-day inside one transaction, so every task that writes here is idempotent.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analytics.visits import MISSING_RSSI
from keliu import db
from keliu.db import Base
from sensor.store import late_sightings, sightings, station_polls

# ---------------------------------------------------------------------------------------------------------------
# the pipeline's tables (revision analytics_0002)

COUNTS = ("visitors", "passersby", "visits", "new_visitors", "repeat_visitors", "staff_excluded", "wifi_logins",
          "new_members", "dwell_lt5m", "dwell_5_20m", "dwell_20_60m", "dwell_1_6h", "dwell_gt6h",
          "loyal_first_time", "loyal_daily", "loyal_weekly", "loyal_monthly", "loyal_occasional")

visits = sa.Table(
    "visits", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("device", sa.String(32), primary_key=True),
    sa.Column("start", sa.Float, primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("end", sa.Float, nullable=False),
    sa.Column("dwell_s", sa.Float, nullable=False),
    sa.Column("staff", sa.Boolean, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
)
device_days = sa.Table(
    "device_days", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("device", sa.String(32), primary_key=True),
    sa.Column("visited", sa.Boolean, nullable=False),
    sa.Column("staff", sa.Boolean, nullable=False),
    sa.Column("auto_staff", sa.Boolean, nullable=False),
    sa.Column("loyalty", sa.SmallInteger, nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("hours", sa.Integer, nullable=False),
)
rollups = sa.Table(
    "rollups", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(4), primary_key=True),
    sa.Column("start", sa.BigInteger, primary_key=True),
    sa.Column("mall", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    *[sa.Column(c, sa.Integer, nullable=False) for c in COUNTS],
    sa.Column("capture_rate", sa.Float, nullable=False),
    sa.Column("median_dwell_s", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
mall_days = sa.Table(
    "mall_days", Base.metadata,
    sa.Column("mall", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("visitors", sa.Integer, nullable=False),
    sa.Column("passersby", sa.Integer, nullable=False),
    sa.Column("staff_excluded", sa.Integer, nullable=False),
    sa.Column("capture_rate", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
mall_transitions = sa.Table(
    "mall_transitions", Base.metadata,
    sa.Column("mall", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("src", sa.String(64), primary_key=True),
    sa.Column("dst", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

# the connected stations' days (revision analytics_0007_connroll): what ``analytics.metrics.ConnectedRecord`` holds.
# A row of connected_days says the pipeline rolled the store-day's stations up (``stations`` heard, 0: none); the
# reports read those days here and the polls (sightings of basis "connected") only for the other days.
connected_days = sa.Table(
    "connected_days", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("stations", sa.Integer, nullable=False),
)
#: a connected visit (``staff`` false), or a station left out as staff (``staff`` true: its first and last poll);
#: keyed station ids only, as the sightings carry them (never a MAC)
connected_visits = sa.Table(
    "connected_visits", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("device", sa.String(32), primary_key=True),
    sa.Column("start", sa.Float, primary_key=True),
    sa.Column("end", sa.Float, nullable=False),
    sa.Column("staff", sa.Boolean, nullable=False),
)

# late roll-ups (revision analytics_0008_lateroll): the sensor records its late sightings' quarter hours
# (``sensor.store.late_sightings``); a store-day's roll-up deletes those of its day and, when there were any, records
# its mall-day here, which the mall-day's roll-up deletes. ``dispatched``: when the dispatcher last sent the roll-up
late_mall_days = sa.Table(
    "late_mall_days", Base.metadata,
    sa.Column("mall", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("dispatched", sa.Float, nullable=True),
)


def claim(conn: Connection, table: sa.Table, now: float, lease_s: float) -> list[tuple[Any, ...]]:
    """Mark the rows of ``late_sightings`` or ``late_mall_days`` not dispatched (or dispatched more than ``lease_s``
    before ``now``: that roll-up failed or was lost) as dispatched at ``now``; returns their keys."""
    d = table.c.dispatched
    stmt = sa.update(table).where(sa.or_(d.is_(None), d < now - lease_s)).values(dispatched=now).returning(
        *table.primary_key.columns)
    return [tuple(r) for r in conn.execute(stmt)]


def clear_late(conn: Connection, store: str, start_s: float, end_s: float) -> int:
    """Delete the store's late quarter hours in [start_s, end_s) (a store-day); returns how many."""
    t = late_sightings.c
    return int(conn.execute(sa.delete(late_sightings).where(
        t.store == store, t.slot >= start_s, t.slot < end_s)).rowcount)


def mark_mall_late(conn: Connection, mall: str, day: date, store: str) -> None:
    """Record that the store's late day was rolled up and its mall-day must be again (locks the row, as
    ``sensor.store.mark_late`` does)."""
    db.upsert(conn, late_mall_days, [{"mall": mall, "day": day, "store": store, "dispatched": None}])


def clear_late_mall(conn: Connection, mall: str, day: date) -> int:
    t = late_mall_days.c
    return int(conn.execute(sa.delete(late_mall_days).where(t.mall == mall, t.day == day)).rowcount)


def lock(conn: Connection, *key: object) -> None:
    """Serialize writers of one natural key (a store-day, a mall-day) for the rest of the transaction.
    PostgreSQL: a transaction-level advisory lock; SQLite serializes writers anyway."""
    if conn.dialect.name == "postgresql":
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(digest, "big", signed=True)})


def load_sightings(conn: Connection, store: str, start_s: float, end_s: float) -> tuple[
        npt.NDArray[np.float64], list[str], npt.NDArray[np.int16]]:
    """The store's probe sightings with ``start_s <= ts < end_s``: times, device ids, RSSI (None as MISSING_RSSI).
    Connected stations (basis "connected") are left out: their device ids are keyed from the station's own MAC,
    not the probes' estimated devices, so counting both would count a connected phone twice (the two ids meet only
    in the connected block's calibration, :func:`station_pairs`)."""
    s = sightings.c
    rows = conn.execute(sa.select(s.ts, s.device, s.rssi).where(
        s.store == store, s.ts >= start_s, s.ts < end_s, s.basis == "probe")).all()
    ts = np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows))
    devs = [r[1] for r in rows]
    rssi = np.fromiter((MISSING_RSSI if r[2] is None else r[2] for r in rows), dtype=np.int16, count=len(rows))
    return ts, devs, rssi


def connected_devices(conn: Connection, store: str, start_s: float, end_s: float) -> list[str]:
    """The distinct devices connected to the store's AP (sightings of basis "connected") in ``[start_s, end_s)``."""
    s = sightings.c
    return list(conn.execute(sa.select(s.device).distinct().where(
        s.store == store, s.ts >= start_s, s.ts < end_s, s.basis == "connected")).scalars().all())


def load_connected(conn: Connection, stores: Sequence[str], start_s: float, end_s: float) -> tuple[
        npt.NDArray[np.float64], list[str], list[str]]:
    """The connected-station sightings (basis "connected", ``sensor.stations``) of ``stores`` with ``start_s <= ts
    < end_s``, in one query: times, device ids and stores. Read by the partial index ``ix_sightings_connected``
    (store, ts) over the connected rows only (revision analytics_0005_connbasis), so a day's stations are read
    without its probes."""
    s = sightings.c
    rows = conn.execute(sa.select(s.ts, s.device, s.store).where(
        s.store.in_(sorted(set(stores))), s.ts >= start_s, s.ts < end_s, s.basis == "connected")).all()
    return (np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows)), [r[1] for r in rows],
            [r[2] for r in rows])


def load_polls(conn: Connection, stores: Sequence[str], start_s: float,
               end_s: float) -> list[tuple[str, int, float]]:
    """The AP's poll records (``sensor.store.station_polls``) of ``stores`` whose 5-minute slot starts in
    [start_s, end_s), every sensor's: (store, slot start, last poll), by the primary key (store, slot, sensor)."""
    p = station_polls.c
    return [(r[0], int(r[1]), float(r[2])) for r in conn.execute(sa.select(p.store, p.slot, p.last).where(
        p.store.in_(sorted(set(stores))), p.slot >= start_s, p.slot < end_s))]


def load_connected_days(conn: Connection, stores: Sequence[str], start: date, end: date) -> tuple[
        list[tuple[str, date, int]], list[tuple[str, date, str, float, float, bool]]]:
    """The rolled-up connected days of ``stores`` in the store-local days [start, end] (store, day, stations
    heard) and their stored rows (store, day, device, start, end, staff), in two queries by the primary keys."""
    d, v = connected_days.c, connected_visits.c
    ids = sorted(set(stores))
    days = [(r[0], r[1], int(r[2])) for r in conn.execute(sa.select(d.store, d.day, d.stations).where(
        d.store.in_(ids), d.day >= start, d.day <= end))]
    rows = [(r[0], r[1], r[2], float(r[3]), float(r[4]), bool(r[5])) for r in conn.execute(sa.select(
        v.store, v.day, v.device, v.start, v.end, v.staff).where(v.store.in_(ids), v.day >= start, v.day <= end))]
    return days, rows


def station_pairs(conn: Connection, store: str, start_s: float, end_s: float) -> tuple[
        npt.NDArray[np.float64], list[str], list[str]]:
    """The store's association sightings that carry a station id (``sensor.store``'s ``station``, revision
    analytics_0006_stationcal) with ``start_s <= ts < end_s``: times, probe device ids and station ids. Read by the
    partial index ``ix_sightings_station`` over those rows only (a few per connected phone a day)."""
    s = sightings.c
    rows = conn.execute(sa.select(s.ts, s.device, s.station).where(
        s.store == store, s.ts >= start_s, s.ts < end_s, s.station.isnot(None))).all()
    return (np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows)), [r[1] for r in rows],
            [r[2] for r in rows])


def visitor_dwell(conn: Connection, store: str, start: date, end: date, devices: Sequence[str]) -> list[
        tuple[date, str, float]]:
    """(day, device, dwell_s) of the stored visits of ``devices`` in the store's days [start, end] that count for
    the estimates (staff left out): what the pipeline made of those devices (``visits``, revision analytics_0002)."""
    v = visits.c
    out: list[tuple[date, str, float]] = []
    wanted = sorted(set(devices))
    for i in range(0, len(wanted), 500):
        out += [(r[0], r[1], float(r[2])) for r in conn.execute(sa.select(v.day, v.device, v.dwell_s).where(
            v.store == store, v.day >= start, v.day <= end, v.staff.is_(False), v.device.in_(wanted[i:i + 500])))]
    return out


def last_sighting(conn: Connection, store: str) -> float | None:
    value = conn.execute(sa.select(sa.func.max(sightings.c.ts)).where(sightings.c.store == store)).scalar()
    return None if value is None else float(value)


#: the consent kind by which a shopper opts in to membership (``portal.core.login_plan.CONSENT_KINDS``; a test
#: checks the two agree: analytics imports nothing of the portal)
MEMBERSHIP_CONSENT = "marketing"


def portal_times(conn: Connection, store: str, start: datetime, end: datetime) -> tuple[list[datetime], list[datetime]]:
    """Times of the store's Wi-Fi logins and of its new members in [start, end) (aware UTC). A new member is a
    shopper who opted in to membership (:data:`MEMBERSHIP_CONSENT` granted) for the first time, at this store: a
    Wi-Fi login alone (the terms the law requires) makes nobody a member. The portal's tables may not exist yet
    (the portal's migrations are another branch): then there are none."""
    insp = sa.inspect(conn)
    naive = conn.dialect.name == "sqlite"  # the portal stores naive UTC on SQLite
    a, b = (start.replace(tzinfo=None), end.replace(tzinfo=None)) if naive else (start, end)

    def aware(values: Sequence[datetime]) -> list[datetime]:
        return [v.replace(tzinfo=UTC) if v.tzinfo is None else v for v in values]

    logins: list[datetime] = []
    if insp.has_table("logins"):
        t = sa.table("logins", sa.column("ts", sa.DateTime(timezone=not naive)), sa.column("store_id"))
        logins = aware(conn.execute(sa.select(t.c.ts).where(t.c.store_id == store, t.c.ts >= a, t.c.ts < b)
                                    ).scalars().all())
    members: list[datetime] = []
    if insp.has_table("consents"):
        c = sa.table("consents", sa.column("member_id"), sa.column("kind"), sa.column("granted", sa.Boolean()),
                     sa.column("ts", sa.DateTime(timezone=not naive)), sa.column("store_id"))
        first = sa.select(c.c.member_id, sa.func.min(c.c.ts).label("first")).where(
            c.c.kind == MEMBERSHIP_CONSENT, c.c.granted.is_(True)).group_by(c.c.member_id).having(
            sa.func.min(c.c.ts) >= a, sa.func.min(c.c.ts) < b).subquery()
        rows = conn.execute(sa.select(c.c.member_id, c.c.ts).distinct().join_from(
            c, first, sa.and_(c.c.member_id == first.c.member_id, c.c.ts == first.c.first)).where(
            c.c.kind == MEMBERSHIP_CONSENT, c.c.granted.is_(True), c.c.store_id == store)).all()
        members = aware([ts for _m, ts in rows])
    return logins, members


def tenant(conn: Connection, store: str) -> tuple[str, str] | None:
    """(mall id, time zone) of a store known to the tenants table."""
    t = sa.table("stores", sa.column("id"), sa.column("mall_id"), sa.column("timezone"))
    if not sa.inspect(conn).has_table("stores"):
        return None
    row = conn.execute(sa.select(t.c.mall_id, t.c.timezone).where(t.c.id == store)).first()
    return None if row is None else (str(row[0]), str(row[1]))
