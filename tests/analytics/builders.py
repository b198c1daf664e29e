"""Test builders for analytics: ``tsighting()``, ``tvisit()``, sightings from the sensor's simulator, and the
migrated database of a parametrized fixture (``tenant_db()``)."""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from analytics.visits import to_ms
from keliu import config, db, tenants
from sensor.records import Sighting, StationPoll

DAY = date(2026, 1, 5)
TZ8 = timezone(timedelta(hours=8))
DAY_START = datetime(2026, 1, 5, tzinfo=TZ8).timestamp()  #: local midnight, Asia/Shanghai
DAY_START_MS = int(DAY_START * 1000)


def dev(name: str | int) -> str:
    """A device id shaped like the sensor's (16 hex digits)."""
    return hashlib.sha256(str(name).encode()).hexdigest()[:16]


def tsighting(t: float, device: str | int = "a", rssi: int | None = -60, store: str = "s1",
              sensor: str = "sensor-1", seq: int | None = None) -> Sighting:
    """A sighting ``t`` seconds after the test day's local midnight."""
    ts = DAY_START + t
    d = dev(device)
    sid = hashlib.sha256(f"{sensor}|{ts!r}|{d}|{seq}|{rssi}".encode()).hexdigest()[:40]
    return Sighting(sid=sid, ts=ts, store=store, sensor=sensor, device=d, rssi=rssi, freq=2437, seq=seq,
                    randomized=False)


def tvisit(device: str | int, start: float, minutes: float, rssi: int = -55, every: float = 60.0,
           store: str = "s1") -> list[Sighting]:
    """Sightings of one visit: strong probes every ``every`` seconds for ``minutes`` from ``start`` (seconds after
    midnight), the last one exactly at the end."""
    n = int(minutes * 60 // every)
    times = [start + i * every for i in range(n)] + [start + minutes * 60]
    return [tsighting(t, device, rssi, store) for t in times]


def tstation(device: str | int, start: float, minutes: float, every: float = 10.0, store: str = "s1",
             rssi: int | None = None) -> list[Sighting]:
    """A station associated to the store's AP from ``start`` (seconds after midnight) for ``minutes``, as the
    sensor's hostapd poll writes it (``sensor.stations``): one sighting of basis "connected" per poll, every
    ``every`` seconds, the last one exactly at the end; ``rssi`` None as with drivers that give no signal."""
    n = int(minutes * 60 // every)
    times = [start + i * every for i in range(n)] + [start + minutes * 60]
    return [replace(tsighting(t, device, rssi, store, sensor="sensor-1-ap"), basis="connected") for t in times]


def arrays(batch: Sequence[Sighting]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from analytics.visits import device_codes, rssi_values

    return (to_ms([s.ts for s in batch]), device_codes([s.device for s in batch]),
            rssi_values([s.rssi for s in batch]))


def from_frames(frames: Iterable[object], store: str = "s1", days_offset: int = 0) -> list[Sighting]:
    """Sightings of the simulator's frames, with each phone's device id taken from the truth (perfect
    de-randomization: these tests measure analytics, the sensor's linking has its own tests)."""
    out = []
    for i, f in enumerate(frames):
        d = dev(f"pid{f.pid}")  # type: ignore[attr-defined]
        out.append(Sighting(sid=f"{store}-{i:08d}-{days_offset}", ts=f.ts, store=store,  # type: ignore[attr-defined]
                            sensor="sensor-1", device=d, rssi=f.rssi, freq=f.freq, seq=f.seq,  # type: ignore[attr-defined]
                            randomized=False))
    return out


def one_store(url: str) -> config.Config:
    """Mall m1 with store s1 ("Shoes"), whose own rules set a 10-minute minimum dwell (the default is 5: a test sees
    the store's rules applied), on the database ``url`` (a ``make_cfg`` for :func:`tenant_db`)."""
    return config.load(overrides={
        "database_url": url, "malls": [{"id": "m1", "name": "Mall One"}],
        "stores": [{"id": "s1", "mall": "m1", "name": "Shoes"}],
        "analytics": {"stores": [{"id": "s1", "min_dwell_s": 600}]}}, env={})


#: the stores of :func:`two_malls` and their malls
TWO_MALLS = {"s1": "m1", "s2": "m1", "s3": "m2"}


def two_malls(url: str) -> config.Config:
    """Malls m1 (stores s1, s2) and m2 (s3); s2's own rules set a 10-minute minimum dwell (the default is 5: a
    test sees each store's rules applied in the mall's report), on the database ``url``."""
    return config.load(overrides={
        "database_url": url, "malls": [{"id": "m1", "name": "Mall One"}, {"id": "m2", "name": "Mall Two"}],
        "stores": [{"id": s, "mall": m, "name": s.upper()} for s, m in TWO_MALLS.items()],
        "analytics": {"stores": [{"id": "s2", "min_dwell_s": 600}]}}, env={})


def two_stores(url: str) -> config.Config:
    """The configuration of mall m1 with stores s1 ("Shoes") and s2 ("Tea"), default rules, on the database
    ``url`` (a ``make_cfg`` for :func:`tenant_db`)."""
    return config.load(overrides={
        "database_url": url, "malls": [{"id": "m1", "name": "Mall One"}],
        "stores": [{"id": "s1", "mall": "m1", "name": "Shoes"}, {"id": "s2", "mall": "m1", "name": "Tea"}]},
        env={})


@contextlib.contextmanager
def tenant_db(request: pytest.FixtureRequest, make_cfg: Callable[[str], config.Config]) -> Iterator[
        tuple[config.Config, sa.Engine]]:
    """The migrated database of a fixture parametrized "sqlite" / "postgresql", with the configuration
    ``make_cfg(url)``: its schema upgraded and its malls and stores synced; the engine disposed at the end."""
    url = request.getfixturevalue("migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url")
    cfg = make_cfg(url)
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        tenants.sync(engine, cfg)
        yield cfg, engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def statements(engine: sa.Engine, *words: str) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside the block that contain every one of ``words`` (a report's query
    count)."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if all(w in statement for w in words):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def tpolls(start: float, end: float, every: float = 10.0, store: str = "s1",
           associated: int = 0) -> list[StationPoll]:
    """The AP poller's records of a poll every ``every`` seconds in [start, end) (seconds after the test day's local
    midnight), each finding ``associated`` stations, as ``keliu sensor stations`` makes them (one per poll)."""
    from sensor.stations import poll_record

    n = int(-(-(end - start) // every))
    return [poll_record(store, "sensor-1-ap", DAY_START + start + i * every, associated) for i in range(n)]
