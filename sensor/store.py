"""The sensor's SQL output (an edge): the ``sightings`` table and its idempotent insert.

The sensor owns what it writes: the SQL sink stores batches here, and analytics reads them (``analytics.store``,
``analytics.pipeline``), so analytics depends on the sensor and never the other way round. ``insert_sightings`` is
idempotent: the primary key is the sighting's ``sid``, and a row that exists already is skipped, so a batch
re-delivered after a crash is stored once. The table's revisions are ``analytics_0001`` and on (its history stays in
analytics/migrations, where it began).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from keliu import db
from keliu.db import Base
from sensor.records import Sighting


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


def insert_sightings(target: Engine | Connection, batch: Sequence[Sighting]) -> int:
    """Store ``batch``; rows whose ``sid`` exists already are skipped. Returns how many rows were new."""
    if not batch:
        return 0
    rows = [
        {"sid": s.sid, "ts": s.ts, "store": s.store, "sensor": s.sensor, "device": s.device, "rssi": s.rssi,
         "freq": s.freq, "seq": s.seq, "randomized": s.randomized, "basis": s.basis,
         "kind": s.kind, "station": s.station}
        for s in batch
    ]
    if isinstance(target, Engine):
        with target.begin() as conn:
            return _insert(conn, rows)
    return _insert(target, rows)


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> int:
    stmt = db.dialect_insert(conn, sightings).on_conflict_do_nothing(index_elements=["sid"]).returning(
        sightings.c.sid)
    new = 0
    for start in range(0, len(rows), 5000):
        # executemany's rowcount is -1 under SQLAlchemy's "insertmanyvalues" on PostgreSQL; RETURNING yields
        # exactly the rows inserted (conflicts return nothing) on both dialects
        new += len(conn.execute(stmt, rows[start:start + 5000]).all())
    return new
