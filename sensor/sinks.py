"""Where sighting batches go, and where the sensor reports its health (edges).

    Sink (Protocol)      deliver(batch, polls) -> None; raises DeliveryError (the batch then stays in the spool)
    ├── SqlSink          sensor.store.insert_sightings (idempotent on sid; the polls in the same transaction):
    │                    the embedded default
    ├── CelerySink       enqueues ``analytics.ingest_batch`` with a list of sighting dicts, then
    │                    ``analytics.ingest_polls`` with the AP's poll records, if any (a broker is set)
    └── MemorySink       for tests

The AP's poll records (:class:`sensor.records.StationPoll`: the station list heard in a 5-minute slot) travel with
the batch they were spooled with. Both stores of them are idempotent (min/max merges), so a batch sent again after
a failure stores the same rows. A worker older than them does not know ``analytics.ingest_polls``: it logs the
unregistered task and drops that message, never the sightings' (docs/SENSOR.md, upgrade order).

    HealthSink (Protocol) report(Health)
    ├── SqlHealth        upserts one row per sensor into ``sensor_health`` (migration sensor_0001)
    └── LogHealth        a log line (no database)

:class:`Delivery` drains the spool into a sink, oldest batch first, and acknowledges a batch only after the sink
returned; when the sink fails it backs off (1 s doubling to 60 s) and the spool keeps everything.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sensor.errors import DeliveryError
from sensor.records import Sighting, StationPoll
from sensor.sightings import to_dict
from sensor.spool import Spool
from sensor.stations import poll_to_dict

log = logging.getLogger(__name__)

INGEST_TASK = "analytics.ingest_batch"
POLLS_TASK = "analytics.ingest_polls"


class Sink(Protocol):
    def deliver(self, batch: list[Sighting], polls: Sequence[StationPoll] = ()) -> None: ...


class SqlSink:
    """Stores batches with ``sensor.store.insert_sightings``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def deliver(self, batch: list[Sighting], polls: Sequence[StationPoll] = ()) -> None:
        import sqlalchemy.exc

        from sensor.store import insert_sightings

        try:
            insert_sightings(self.engine, batch, polls=polls)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DeliveryError(f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc


class CelerySink:
    """Enqueues ``analytics.ingest_batch(batch)``; the task is idempotent on sid (coordinated by name only)."""

    def __init__(self, broker_url: str, queue: str | None = None, ssl: dict[str, Any] | None = None) -> None:
        from celery import Celery

        self.app = Celery("keliu-sensor", broker=broker_url, set_as_current=False)
        # TLS to the broker with the fleet CA's certificates: keliu.tls.broker_use_ssl of [analytics] broker_ssl_*
        self.app.conf.broker_use_ssl = ssl or False
        # fail fast: a downed broker must not stall capture; the spool keeps the batch and Delivery retries later
        self.app.conf.update(task_serializer="json", accept_content=["json"],
                             broker_connection_retry_on_startup=False, broker_connection_max_retries=1,
                             broker_connection_timeout=2,
                             broker_transport_options={"max_retries": 0, "socket_connect_timeout": 2})
        self.queue = queue

    def deliver(self, batch: list[Sighting], polls: Sequence[StationPoll] = ()) -> None:
        from kombu.exceptions import KombuError, OperationalError

        try:
            # through the queue's own exchange, never Celery's shortcut via the default exchange: a fleet's router
            # user may write to its queue's exchange only (keliu.fleet.rabbit), and write access to the default
            # exchange would let it publish into any queue
            if batch:
                self.app.send_task(INGEST_TASK, args=[[to_dict(s) for s in batch]], queue=self.queue,
                                   exchange=self.queue, routing_key=self.queue, retry=False)
            # a task of its own: a worker that predates it drops this message alone (an unregistered task), where
            # an argument added to ingest_batch would fail the sightings' task on it
            if polls:
                self.app.send_task(POLLS_TASK, args=[[poll_to_dict(p) for p in polls]], queue=self.queue,
                                   exchange=self.queue, routing_key=self.queue, retry=False)
        except (KombuError, OperationalError, OSError) as exc:
            raise DeliveryError(f"broker: {type(exc).__name__}: {exc}") from exc


class MemorySink:
    """Keeps batches in memory (tests); ``fail`` makes it raise DeliveryError like a downed database."""

    def __init__(self) -> None:
        self.batches: list[list[Sighting]] = []
        self.polls: list[StationPoll] = []
        self.fail = False

    def deliver(self, batch: list[Sighting], polls: Sequence[StationPoll] = ()) -> None:
        if self.fail:
            raise DeliveryError("memory sink is down")
        if batch:
            self.batches.append(batch)
        self.polls += polls


@dataclass
class Delivery:
    """Drains a spool into a sink with back-off. ``delivered`` counts sightings handed over."""

    spool: Spool
    sink: Sink
    delivered: int = 0
    failing_since: float | None = None
    retry_at: float = 0.0
    backoff: float = 1.0
    last_error: str = ""

    def drain(self, now: float, max_batches: int = 50) -> int:
        """Deliver up to ``max_batches`` spooled batches; returns how many went through."""
        if now < self.retry_at:
            return 0
        done = 0
        for path in self.spool.pending()[:max_batches]:
            try:
                batch, polls = self.spool.load_batch(path)
            except (ValueError, TypeError) as exc:  # a damaged file: set aside, loudly, and go on
                log.error("sensor spool file %s is unreadable (%s); moved aside as .bad", path.name, exc)
                self.spool.quarantine(path)
                continue
            try:
                self.sink.deliver(batch, polls)
            except DeliveryError as exc:
                if self.failing_since is None:
                    self.failing_since = now
                    log.warning("sensor delivery failing (%s); batches stay in the spool", exc)
                self.last_error = str(exc)
                self.retry_at = now + self.backoff
                self.backoff = min(60.0, self.backoff * 2)
                return done
            self.spool.ack(path)
            self.delivered += len(batch)
            done += 1
        if self.failing_since is not None:
            log.warning("sensor delivery recovered after %.0f s", now - self.failing_since)
        self.failing_since, self.backoff, self.last_error = None, 1.0, ""
        return done


class DeliveryThread(threading.Thread):
    """Drains the spool in the background (live capture: a slow database or broker must not stall the radio)."""

    def __init__(self, delivery: Delivery, clock: Callable[[], float] = time.time, interval: float = 0.5) -> None:
        super().__init__(name="sensor-delivery", daemon=True)
        self.delivery, self.clock, self.interval = delivery, clock, interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.delivery.drain(self.clock())
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


# ---------------------------------------------------------------------------------------------------------------
# health


@dataclass(frozen=True)
class Health:
    """One health report of one sensor (no device ids, no MACs)."""

    sensor: str
    store: str
    ts: float
    started: float
    fps: float
    frames: int
    probes: int
    drops: int
    malformed: int
    bad_fcs: int
    spool_batches: int
    spool_bytes: int
    spool_dropped: int
    delivered: int
    last_frame_ts: float | None
    channel: int | None
    freq: int | None
    devices: int
    macs: int
    mode: str
    status: str = ""
    #: probe requests stamped outside the parser's timestamp window (also counted in ``drops``)
    bad_ts: int = 0
    #: MACs forgotten because the identity layer's ``max_macs`` cap was reached
    evicted: int = 0
    #: requests kept with no signal: their radiotap signal, above ``sensor.frames.MAX_SIGNAL_DBM``, is a driver's glitch
    bad_signal: int = 0


class HealthSink(Protocol):
    def report(self, health: Health) -> None: ...


class SqlHealth:
    """Upserts one ``sensor_health`` row per sensor; a database error is logged, never fatal."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def report(self, health: Health) -> None:
        import sqlalchemy as sa

        table = health_table()
        row = asdict(health)
        try:
            with self.engine.begin() as conn:
                if conn.execute(sa.update(table).where(table.c.sensor == health.sensor).values(**row)).rowcount == 0:
                    conn.execute(sa.insert(table).values(**row))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("sensor health not written: %s", str(exc).splitlines()[0][:200])


class LogHealth:
    def report(self, health: Health) -> None:
        log.info("sensor health: %.0f frames/s, %d frames, %d drops (%d bad timestamps), %d signals read as none, "
                 "%d MACs evicted, spool %d batches, last frame %s, channel %s", health.fps, health.frames,
                 health.drops, health.bad_ts, health.bad_signal, health.evicted, health.spool_batches,
                 health.last_frame_ts, health.channel)


def health_table() -> Any:
    """The ``sensor_health`` table (migrations sensor_0001 to sensor_0003) for queries: dashboards read it."""
    import sqlalchemy as sa

    md = sa.MetaData()
    return sa.Table(
        "sensor_health", md,
        sa.Column("sensor", sa.String(64), primary_key=True), sa.Column("store", sa.String(64)),
        sa.Column("ts", sa.Float), sa.Column("started", sa.Float), sa.Column("fps", sa.Float),
        sa.Column("frames", sa.BigInteger), sa.Column("probes", sa.BigInteger), sa.Column("drops", sa.BigInteger),
        sa.Column("malformed", sa.BigInteger), sa.Column("bad_fcs", sa.BigInteger),
        sa.Column("spool_batches", sa.Integer), sa.Column("spool_bytes", sa.BigInteger),
        sa.Column("spool_dropped", sa.BigInteger), sa.Column("delivered", sa.BigInteger),
        sa.Column("last_frame_ts", sa.Float), sa.Column("channel", sa.Integer), sa.Column("freq", sa.Integer),
        sa.Column("devices", sa.Integer), sa.Column("macs", sa.Integer), sa.Column("mode", sa.String(16)),
        sa.Column("status", sa.String(200)), sa.Column("bad_ts", sa.BigInteger), sa.Column("evicted", sa.BigInteger),
        sa.Column("bad_signal", sa.BigInteger),
    )


def health_records(engine: Any, now: float) -> list[dict[str, Any]]:
    """Every sensor's latest health as the records ``analytics.influx.health_lines`` renders (mall, store, sensor,
    ts, fps, drops, last_frame_age_s), for whoever pushes health to InfluxDB; also handy for dashboards."""
    import sqlalchemy as sa

    h = health_table()
    stores = sa.table("stores", sa.column("id"), sa.column("mall_id"))
    q = sa.select(h, stores.c.mall_id).select_from(h.outerjoin(stores, stores.c.id == h.c.store))
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return [{"mall": r["mall_id"] or "", "store": r["store"], "sensor": r["sensor"], "ts": r["ts"], "fps": r["fps"],
             "drops": r["drops"], "status": r["status"], "spool_batches": r["spool_batches"],
             "last_frame_age_s": None if r["last_frame_ts"] is None else max(0.0, now - r["last_frame_ts"])}
            for r in rows]
