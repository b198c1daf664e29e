"""The on-disk spool between the sensor and its sinks (an edge: files under ``spool_dir``).

Every batch is written to the spool before any delivery is tried: a JSON file, written to a temporary name,
fsynced and renamed into place (so a file is either whole or absent), then fsync of the folder. Delivery reads
the oldest file, hands it to the sink and deletes it only after the sink committed. After ``kill -9`` at any
moment, a restarted sensor delivers what is left; a batch that was committed but not yet deleted is delivered
again, and the idempotent sighting ids (``sid``) make the second delivery a no-op — each sighting is stored
exactly once.

The spool is bounded (``max_bytes``). When it is full a new batch is refused with :class:`SpoolFull`, logged at
ERROR every time and counted in the health report (``spool_dropped``): losing data silently is the one thing it
must not do. Sightings carry no MAC address, so neither does the spool. A small ``state.json`` keeps a replay's
position (how many frames of which file were spooled), so a restarted replay continues where it stopped.

A batch is a JSON list of sightings, or, when it carries the AP's polls (:class:`sensor.records.StationPoll`: the
station list heard, no device), an object ``{"sightings": [...], "polls": [...]}``; a batch without polls keeps the
list, as before.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from sensor.errors import SpoolFull
from sensor.records import Sighting, StationPoll
from sensor.sightings import from_dict, to_dict
from sensor.stations import poll_from_dict, poll_to_dict

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.dropped = 0  #: sightings refused because the spool was full
        self.dropped_polls = 0  #: poll records refused because the spool was full
        for tmp in self.dir.glob("*.tmp"):  # a write interrupted by a crash: never renamed, never acknowledged
            tmp.unlink()
        files = self.pending()
        self._next = int(files[-1].stem) + 1 if files else 1
        self._bytes = sum(f.stat().st_size for f in files)
        # put (the capture thread) and ack (a delivery thread) may run at once
        self._lock = threading.Lock()

    def pending(self) -> list[Path]:
        """Spooled batches, oldest first."""
        return sorted(self.dir.glob("[0-9]*.json"))

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, batch: list[Sighting], state: dict[str, Any] | None = None,
            polls: list[StationPoll] | None = None) -> Path:
        """Persist ``batch`` and ``polls`` (and, atomically after them, the replay ``state``). Raises SpoolFull
        when full."""
        rows = [to_dict(s) for s in batch]
        body: Any = {"sightings": rows, "polls": [poll_to_dict(p) for p in polls]} if polls else rows
        data = json.dumps(body, separators=(",", ":")).encode()
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                self.dropped += len(batch)
                self.dropped_polls += len(polls or ())
                log.error("sensor spool %s is FULL (%d of %d bytes): %d sightings refused, %d so far; is the "
                          "database or broker down?", self.dir, self._bytes, self.max_bytes, len(batch),
                          self.dropped)
                raise SpoolFull(f"spool {self.dir} is full ({self._bytes} bytes of {self.max_bytes})")
            path = self.dir / f"{self._next:012d}.json"
            self._next += 1
            self._bytes += len(data)
        _atomic_write(path, data)
        if state is not None:
            self.save_state(state)
        return path

    def load_batch(self, path: Path) -> tuple[list[Sighting], list[StationPoll]]:
        """The sightings and poll records of a spooled batch; ValueError or TypeError when it is neither shape."""
        body = json.loads(path.read_bytes())
        if isinstance(body, list):
            return [from_dict(d) for d in body], []
        if not isinstance(body, dict) or set(body) != {"sightings", "polls"}:
            raise ValueError(f"a batch is a list of sightings or {{sightings, polls}}, not {type(body).__name__}")
        return [from_dict(d) for d in body["sightings"]], [poll_from_dict(d) for d in body["polls"]]

    def ack(self, path: Path) -> None:
        """The batch in ``path`` is committed downstream: forget it."""
        size = path.stat().st_size
        path.unlink()
        _fsync_dir(self.dir)
        with self._lock:
            self._bytes -= size

    def quarantine(self, path: Path) -> None:
        """Move an unreadable batch aside (``.bad``), so that it neither blocks delivery nor disappears."""
        size = path.stat().st_size
        path.rename(path.with_suffix(".bad"))
        with self._lock:
            self._bytes -= size

    def save_state(self, state: dict[str, Any]) -> None:
        _atomic_write(self.dir / "state.json", json.dumps(state).encode())

    def load_state(self) -> dict[str, Any]:
        path = self.dir / "state.json"
        if not path.exists():
            return {}
        loaded = json.loads(path.read_bytes())
        return loaded if isinstance(loaded, dict) else {}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
