"""The sensor's SQL output (an edge): the ``sightings`` table and its idempotent insert.

The sensor owns what it writes: the SQL sink stores batches here, and analytics reads them (``analytics.store``,
``analytics.pipeline``), so analytics depends on the sensor and never the other way round. ``insert_sightings`` is
idempotent: the primary key is the sighting's ``sid``, and a row that exists already is skipped, so a batch
re-delivered after a crash is stored once. The table's revisions are ``analytics_0001`` and on (its history stays in
analytics/migrations, where it began).

The same transaction records the rows it stored late (heard more than :data:`LATE_AFTER_S` before they were stored:
a spool delivered after an outage) in ``late_sightings``, by store and UTC quarter hour (revision
``analytics_0008_lateroll``): the analytics dispatcher rolls up their store-local days, which its window of today and
yesterday would miss. A row skipped as a duplicate records nothing; the table holds no device.

The AP's poller records its successful polls (``station_polls``, revision ``analytics_0009_aphealth``: store, sensor,
5-minute slot, first and last poll, the most stations associated; no device) with the batch they were spooled with,
in the same transaction: analytics tells an hour nobody was connected in (polled, no station) from one the station
list was not heard in (no poll). A slot's row merges by min and max, so a batch stored twice changes nothing.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from keliu import db
from keliu.db import Base
from sensor.records import Sighting, StationPoll
from sensor.stations import merge_polls


class SightingRow(Base):
    __tablename__ = "sightings"
    sid: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    ts: Mapped[float] = mapped_column(sa.Float, index=True)
    store: Mapped[str] = mapped_column(sa.String(64), index=True)
    sensor: Mapped[str] = mapped_column(sa.String(64))
    device: Mapped[str] = mapped_column(sa.String(32))
    rssi: Mapped[int | None] = mapped_column(sa.SmallInteger, nullable=True)
    freq: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    seq: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    randomized: Mapped[bool] = mapped_column(sa.Boolean)
    #: "probe" or "connected" (``sensor.records.Sighting.basis``; revision analytics_0003)
    basis: Mapped[str] = mapped_column(sa.String(16), server_default="probe")
    #: ``probe``, ``assoc`` or ``reassoc`` (revision analytics_0004)
    kind: Mapped[str] = mapped_column(sa.String(8), server_default="probe")
    #: association rows only: the keyed id of the address, as the AP's station list keys it (``Sighting.station``;
    #: revision analytics_0006_stationcal); NULL elsewhere and on rows stored before
    station: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)


sightings = cast(sa.Table, SightingRow.__table__)
#: the connected stations of a store by time, over those rows only (revision analytics_0005_connbasis): the day's
#: report reads its stations without the day's probe sightings
sa.Index("ix_sightings_connected", sightings.c.store, sightings.c.ts,
         postgresql_where=sightings.c.basis == "connected", sqlite_where=sightings.c.basis == "connected")
#: the associations that carry a station id, by time (revision analytics_0006_stationcal): the report pairs a day's
#: connected stations with the probe devices of the same phones without reading the day's probes
sa.Index("ix_sightings_station", sightings.c.store, sightings.c.ts,
         postgresql_where=sightings.c.station.isnot(None), sqlite_where=sightings.c.station.isnot(None))


#: a sighting stored more than this long after it was heard is recorded as late. The dispatcher's window rolls up
#: yesterday until ``visit_gap_s`` + 10 minutes after midnight, every 5 minutes: a sighting stored sooner than this
#: is in a day the window still rolls up after it is stored (docs/METRICS.md, "How the numbers are made")
LATE_AFTER_S = 300
#: late sightings are recorded by UTC quarter hour: every time zone's offset is a whole number of quarter hours
#: (tests/sensor/test_store.py checks tzdata's since 2000), so a quarter hour lies in one store-local day
SLOT_S = 900

#: the store's quarter hours (``slot``: epoch seconds of the start) with sightings stored late and not rolled up
#: since: written with the sightings, deleted by the roll-up of their day (``analytics.pipeline.rollup_store``);
#: ``dispatched`` is when the dispatcher last sent that roll-up (NULL: not since the last late row)
late_sightings = sa.Table(
    "late_sightings", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("slot", sa.BigInteger, primary_key=True),
    sa.Column("dispatched", sa.Float, nullable=True),
)


#: the AP's station list heard: a sensor's successful polls of hostapd by 5-minute slot (``slot``: epoch seconds of
#: its start; ``sensor.records.StationPoll``), purged with the raw sightings (``analytics.pipeline.purge``)
station_polls = sa.Table(
    "station_polls", Base.metadata,
    sa.Column("store", sa.String(64), primary_key=True),
    sa.Column("slot", sa.BigInteger, primary_key=True),
    sa.Column("sensor", sa.String(64), primary_key=True),
    sa.Column("first", sa.Float, nullable=False),
    sa.Column("last", sa.Float, nullable=False),
    sa.Column("stations", sa.Integer, nullable=False),
)


def late_slots(rows: Iterable[tuple[str, float]], now: float) -> list[tuple[str, int]]:
    """The (store, quarter hour) of the stored rows ``(store, ts)`` heard more than :data:`LATE_AFTER_S` before
    ``now``, sorted (pure; the upsert takes its row locks in this order)."""
    cut = now - LATE_AFTER_S
    return sorted({(store, int(ts // SLOT_S) * SLOT_S) for store, ts in rows if ts < cut})


def insert_sightings(target: Engine | Connection, batch: Sequence[Sighting], now: float | None = None,
                     polls: Sequence[StationPoll] = ()) -> int:
    """Store ``batch``; rows whose ``sid`` exists already are skipped. The new rows heard more than
    :data:`LATE_AFTER_S` before ``now`` (default: the clock) are recorded in ``late_sightings``, and ``polls`` in
    ``station_polls`` (:func:`insert_polls`), in the same transaction. Returns how many rows were new."""
    if not batch:
        if polls:
            insert_polls(target, polls)
        return 0
    now = time.time() if now is None else now
    rows = [
        {"sid": s.sid, "ts": s.ts, "store": s.store, "sensor": s.sensor, "device": s.device, "rssi": s.rssi,
         "freq": s.freq, "seq": s.seq, "randomized": s.randomized, "basis": s.basis,
         "kind": s.kind, "station": s.station}
        for s in batch
    ]
    if isinstance(target, Engine):
        with target.begin() as conn:
            return _insert(conn, rows, now, polls)
    return _insert(target, rows, now, polls)


def insert_polls(target: Engine | Connection, polls: Sequence[StationPoll]) -> None:
    """Merge ``polls`` into ``station_polls`` (a slot's first poll the smallest, its last the largest, its stations
    the most): idempotent, in any order. Merged first (:func:`sensor.stations.merge_polls`): one statement may not
    update a row twice on PostgreSQL."""
    if isinstance(target, Engine):
        with target.begin() as conn:
            _upsert_polls(conn, polls)
    else:
        _upsert_polls(target, polls)


def _upsert_polls(conn: Connection, polls: Sequence[StationPoll]) -> None:
    rows = [{"store": p.store, "slot": p.slot, "sensor": p.sensor, "first": p.first, "last": p.last,
             "stations": p.stations} for p in merge_polls(polls)]
    if not rows:
        return
    ins = db.dialect_insert(conn, station_polls)
    c, new = station_polls.c, ins.excluded
    # SQLite's two-argument min() and max() are PostgreSQL's least() and greatest()
    lo, hi = (sa.func.least, sa.func.greatest) if conn.dialect.name == "postgresql" else (sa.func.min, sa.func.max)
    conn.execute(ins.on_conflict_do_update(index_elements=["store", "slot", "sensor"], set_={
        "first": lo(c.first, new.first), "last": hi(c.last, new.last), "stations": hi(c.stations, new.stations)}),
        rows)


def _insert(conn: Connection, rows: list[dict[str, Any]], now: float, polls: Sequence[StationPoll] = ()) -> int:
    stmt = db.dialect_insert(conn, sightings).on_conflict_do_nothing(index_elements=["sid"]).returning(
        sightings.c.store, sightings.c.ts)
    new: list[tuple[str, float]] = []
    for start in range(0, len(rows), 5000):
        # executemany's rowcount is -1 under SQLAlchemy's "insertmanyvalues" on PostgreSQL; RETURNING yields
        # exactly the rows inserted (conflicts return nothing) on both dialects
        new += [(r[0], r[1]) for r in conn.execute(stmt, rows[start:start + 5000])]
    mark_late(conn, late_slots(new, now))
    _upsert_polls(conn, polls)
    return len(new)


def mark_late(conn: Connection, slots: Sequence[tuple[str, int]]) -> None:
    """Record ``slots`` as holding late sightings not rolled up yet, in the caller's transaction. An existing row is
    updated, not skipped: the update locks it until this transaction commits, so a roll-up that deletes it
    (``analytics.store.clear_late``) waits and then reads these sightings, or deletes it first and this writes it
    again (on PostgreSQL; SQLite serializes writers)."""
    db.upsert(conn, late_sightings, [{"store": s, "slot": t, "dispatched": None} for s, t in slots])
