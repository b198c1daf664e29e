"""The sensor's pipeline from probe batches to delivered sightings (an edge: it drives the spool and the sinks).

    ProbeBatch --identify--> device ids --sightings--> Batcher --(count | time)--> Spool --Delivery--> Sink
                                                                                   \\--> Health every few seconds

The AP's poller also feeds the record of each successful poll (:class:`sensor.records.StationPoll`, no device): it
waits, merged by slot, for the next batch spooled, and is spooled on its own (a batch without sightings) after
``batch_seconds`` when no sighting comes (nobody connected), so the list heard reaches analytics either way.

The capture and replay edges feed it :class:`sensor.frames.ProbeBatch` es and call :meth:`Pipeline.tick` while
idle. Nothing here reads the wall clock directly: ``clock`` is injected (tests pass a fake one).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sensor.errors import SpoolFull
from sensor.frames import Parser, ProbeBatch, channel_number
from sensor.grouping import Identifier
from sensor.identity import Registry
from sensor.records import Sighting, StationPoll
from sensor.sightings import Batcher, sightings
from sensor.sinks import Delivery, DeliveryThread, Health, HealthSink
from sensor.spool import Spool
from sensor.stations import merge_polls, station_device

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    store: str
    sensor: str
    parser: Parser
    identifier: Identifier
    sid_key: bytes = field(repr=False)
    spool: Spool
    delivery: Delivery
    health: HealthSink
    batcher: Batcher
    mode: str = "strict"
    clock: Callable[[], float] = time.time
    health_seconds: float = 10.0
    registry: Callable[[], Registry] | None = None
    registry_seconds: float = 60.0
    #: deliver from a background thread (live capture) instead of inline (replay, tests)
    background: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.last_frame_ts: float | None = None
        self.freq: int | None = None
        self.channel: int | None = None  #: the channel the radio listens on (set by the capture edge)
        self._health_at = 0.0
        self._registry_at = 0.0
        self.fed = 0  #: probes fed (a paced replay parses ahead of what it feeds)
        self._fps_mark = (self.started, 0)
        self.fps = 0.0
        self.status = ""
        self._polls: list[StationPoll] = []  #: poll records not spooled yet
        self._polls_since: float | None = None
        self._thread: DeliveryThread | None = None
        if self.background:
            self._thread = DeliveryThread(self.delivery, self.clock)
            self._thread.start()

    def feed(self, batch: ProbeBatch, position: dict[str, Any] | None = None) -> list[Sighting]:
        """Identify and batch the probes; spool due batches. With ``position`` (a replay's place in its file),
        everything fed so far is spooled together with it whenever a batch is due, so a restart resumes there."""
        now = self.clock()
        self.refresh_registry(now)
        self.fed += len(batch)
        devices = self.identifier.identify_batch(batch)
        items = sightings(batch, devices, self.store, self.sensor, self.sid_key, self._station)
        if len(batch):
            self.last_frame_ts = float(batch.ts[-1])
            self.freq = int(batch.freq[-1]) or None
        due = self.batcher.add(items, now)
        if due and position is not None:
            due += self.batcher.flush()
        for i, b in enumerate(due):
            self._spool(b, position if i == len(due) - 1 else None)
        self.tick(now)
        return items

    def _station(self, raw: bytes, ts: float) -> str | None:
        """An association's address keyed as the AP's station list keys it (same key, registry and ignore list
        as the identifier's), so the station sighting of the same phone carries the same id."""
        ident = self.identifier
        return station_device(raw, ts, ident.master, ident.policy, ident.registry, ident.ignore)

    def feed_sightings(self, items: list[Sighting], poll: StationPoll | None = None) -> None:
        """Sightings made elsewhere (the AP's connected stations, ``sensor.stations``, built against
        ``identifier.registry`` after :meth:`refresh_registry`) into the same batches, spool and delivery as the
        probes', with the record of the ``poll`` that found them (spooled with the next batch)."""
        now = self.clock()
        if poll is not None:
            self._polls = merge_polls([*self._polls, poll])
            if self._polls_since is None:
                self._polls_since = now
        for b in self.batcher.add(items, now):
            self._spool(b, None)
        self.tick(now)

    def tick(self, now: float | None = None) -> None:
        """Time-based work: a timed-out batch, delivery, health, the portal's registry."""
        now = self.clock() if now is None else now
        for b in self.batcher.due(now):
            self._spool(b, None)
        if self._polls_since is not None and now - self._polls_since >= self.batcher.seconds:
            for b in self.batcher.flush() or [[]]:  # polls that found nobody: a batch of their own
                self._spool(b, None)
        if self._thread is None:
            self.delivery.drain(now)
        if now - self._health_at >= self.health_seconds:
            self.report(now)

    def checkpoint(self, position: dict[str, Any]) -> None:
        """Spool everything pending together with ``position`` (a replay's round boundary)."""
        for b in self.batcher.flush():
            self._spool(b, None)
        self.spool.save_state(position)

    def close(self, position: dict[str, Any] | None = None) -> None:
        """Spool what is pending, try one last delivery, report health."""
        now = self.clock()
        for b in self.batcher.flush() or ([[]] if self._polls else []):
            self._spool(b, position)
        if position is not None and not self.batcher:
            self.spool.save_state(position)
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        self.delivery.drain(now, max_batches=10_000)
        self.report(now)

    def _spool(self, batch: list[Sighting], position: dict[str, Any] | None) -> None:
        polls, self._polls, self._polls_since = self._polls, [], None
        try:
            self.spool.put(batch, position, polls)
        except SpoolFull:
            self.status = "spool full: sightings are being dropped"  # logged by the spool, shown by health

    def refresh_registry(self, now: float) -> None:
        """Re-read the portal's member / opt-out registry when ``registry_seconds`` have passed."""
        if self.registry is not None and now - self._registry_at >= self.registry_seconds:
            self._registry_at = now
            self.identifier.set_registry(self.registry())

    def report(self, now: float) -> None:
        self._health_at = now
        t0, n0 = self._fps_mark
        if now > t0:
            self.fps = (self.fed - n0) / (now - t0)
        self._fps_mark = (now, self.fed)
        st = self.parser.stats
        pending = self.spool.pending()
        status = self.status or (f"delivery failing: {self.delivery.last_error}" if self.delivery.last_error else "ok")
        self.health.report(Health(
            sensor=self.sensor, store=self.store, ts=now, started=self.started, fps=round(self.fps, 1),
            frames=st.frames, probes=st.probes, drops=st.drops, malformed=st.malformed, bad_fcs=st.bad_fcs,
            spool_batches=len(pending), spool_bytes=self.spool.bytes, spool_dropped=self.spool.dropped,
            delivered=self.delivery.delivered, last_frame_ts=self.last_frame_ts,
            channel=self.channel if self.channel is not None else (channel_number(self.freq) if self.freq else None),
            freq=self.freq, devices=self.identifier.stats.devices, macs=self.identifier.stats.macs,
            mode=self.mode, status=status[:200], bad_ts=st.bad_ts, evicted=self.identifier.evicted,
            bad_signal=st.bad_signal))
