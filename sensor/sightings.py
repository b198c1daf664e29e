"""Probes (and association requests) plus device ids in, :class:`sensor.records.Sighting` batches out (pure).

The sighting id (``sid``) is the idempotency key of delivery: a keyed BLAKE2b digest over the sensor, the frame's
timestamp (microseconds), its sequence number and its MAC. The same frame always gets the same sid (so a batch
re-sent after a crash, or a capture replayed again, is stored once), and the key (``identity.sid_key``) keeps the
MAC from being recovered from it. An association or reassociation request also gets the keyed id of its own
address (``Sighting.station``, from the ``station`` function the caller passes: :func:`sensor.stations.station_device`),
next to its device, which may be the phone's linked probe device. :class:`Batcher` cuts the stream into batches by
count and by time.
"""
from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sensor.frames import KIND_PROBE, KINDS, NO_RSSI, ProbeBatch
from sensor.records import Sighting

_PACK = struct.Struct(">qH6s")
# A frozen dataclass's __init__ sets each field through object.__setattr__, which costs more than the rest of
# building a sighting. The slots' own descriptors set the same fields directly; the result is an ordinary,
# equal, immutable Sighting (tests/sensor/test_pipeline.py checks that against the constructor).
_SLOTS = tuple(getattr(Sighting, name).__set__ for name in Sighting.__slots__)


#: the keyed id of a 6-byte address at a time, as the AP's station list keys it (None: dropped)
StationKey = Callable[[bytes, float], "str | None"]


def sightings(batch: ProbeBatch, devices: np.ndarray, store: str, sensor: str, key: bytes,
              station: StationKey | None = None) -> list[Sighting]:
    """The sightings of ``batch`` whose device is not None (dropped devices yield nothing). With ``station``, an
    association or reassociation sighting carries ``station(address, ts)`` as its ``station``."""
    keep = np.flatnonzero(devices != None)
    if not len(keep):
        return []
    keyed = hashlib.blake2b(key=key, digest_size=16)  # copying a keyed state skips re-hashing the key
    copy = keyed.copy
    prefix = sensor.encode() + b"\0"
    pack = _PACK.pack
    new = object.__new__
    s_sid, s_ts, s_store, s_sensor, s_device, s_rssi, s_freq, s_seq, s_rand, s_basis, s_kind, s_station = _SLOTS
    us = np.round(batch.ts[keep] * 1e6).astype(np.int64).tolist()
    kinds = itertools.repeat(KINDS[KIND_PROBE]) if batch.kind is None else [KINDS[k] for k in batch.kind[keep].tolist()]
    out: list[Sighting] = []
    append = out.append
    for ts, t_us, mac, dev, rssi, freq, seq, kind in zip(batch.ts[keep].tolist(), us, batch.mac[keep].tolist(),
                                                         devices[keep].tolist(), batch.rssi[keep].tolist(),
                                                         batch.freq[keep].tolist(), batch.seq[keep].tolist(), kinds):
        raw = mac.to_bytes(6, "big")
        h = copy()
        h.update(prefix + pack(t_us, seq, raw))
        s = new(Sighting)
        s_sid(s, h.hexdigest())
        s_ts(s, ts)
        s_store(s, store)
        s_sensor(s, sensor)
        s_device(s, dev)
        s_rssi(s, None if rssi == NO_RSSI else rssi)
        s_freq(s, freq or None)
        s_seq(s, seq)
        s_rand(s, bool(raw[0] & 0x02))
        s_basis(s, "probe")
        s_kind(s, kind)
        # association requests are rare (a phone joining a network): the keying costs nothing on the probes' path
        s_station(s, None if station is None or kind == "probe" else station(raw, ts))
        append(s)
    return out


def to_dict(s: Sighting) -> dict[str, Any]:
    """A sighting as JSON-able values (the spool, the Celery sink). ``station`` appears only where it is set: the
    probes' batches stay as small as before, and a receiver that predates it reads them as it did."""
    d = asdict(s)
    if d["station"] is None:
        del d["station"]
    return d


def from_dict(d: dict[str, Any]) -> Sighting:
    return Sighting(**d)


@dataclass
class Batcher:
    """Collects sightings; a batch is due at ``size`` sightings or ``seconds`` after its first one."""

    size: int
    seconds: float
    _items: list[Sighting] = field(default_factory=list)
    _since: float | None = None

    def add(self, items: list[Sighting], now: float) -> list[list[Sighting]]:
        """Add ``items``; return the batches now due (full ones, then a timed-out remainder)."""
        if items and self._since is None:
            self._since = now
        self._items += items
        out: list[list[Sighting]] = []
        while len(self._items) >= self.size:
            out.append(self._items[:self.size])
            self._items = self._items[self.size:]
        if not self._items:
            self._since = None
        return out + self.due(now)

    def due(self, now: float) -> list[list[Sighting]]:
        """The remainder, if it has waited ``seconds``."""
        if self._items and self._since is not None and now - self._since >= self.seconds:
            return self.flush()
        return []

    def flush(self) -> list[list[Sighting]]:
        items, self._items, self._since = self._items, [], None
        return [items] if items else []

    def __len__(self) -> int:
        return len(self._items)
