"""Typed configuration of the sensor: ``[sensor]`` (a pure dataclass)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from keliu.config import each, mac, positive


@dataclass(frozen=True)
class SensorConfig:
    store: str = "demo-store"
    sensor_id: str = "sensor-1"
    #: strict: device-id key rotates daily; linked: every link_days days (see docs/PRIVACY.md)
    privacy: Literal["strict", "linked"] = "strict"
    link_days: int = field(default=30, metadata={"check": positive})
    channels: list[int] = field(default_factory=lambda: [1, 6, 11])
    dwell_ms: int = field(default=250, metadata={"check": positive})
    #: empty: ``<var_dir>/spool`` (so that a test or a second appliance with its own var_dir has its own spool)
    spool_dir: str = ""
    spool_max_mb: int = field(default=256, metadata={"check": positive})
    batch_size: int = field(default=5000, metadata={"check": positive})
    batch_seconds: float = field(default=2.0, metadata={"check": positive})
    #: MACs of the sensor's own radios and other fixed infrastructure, never counted
    ignore_macs: list[str] = field(default_factory=list, metadata={"check": each(mac)})
    #: where sightings go: sql (sensor.store, read by analytics), celery (analytics.ingest_batch), auto: celery when
    #: [analytics] broker_url is set, else sql
    sink: Literal["auto", "sql", "celery"] = "auto"
    #: verify: recompute the FCS of frames that carry one; flag: trust the driver's bad-FCS flag only
    fcs: Literal["verify", "flag"] = "verify"
    #: group every MAC as if randomized (only for anonymized captures whose locally-administered bit is random)
    group_all: bool = False
    health_seconds: float = field(default=10.0, metadata={"check": positive})
    #: how often the portal's member / opt-out registry is re-read
    registry_seconds: float = field(default=60.0, metadata={"check": positive})
    #: at most this many MACs remembered for grouping (~560 bytes each); past it the least recently heard are
    #: forgotten and counted (health: evicted)
    max_macs: int = field(default=50_000, metadata={"check": positive})
    #: frames stamped before this (epoch seconds; default 2000-01-01) or more than ts_ahead_s past the clock are
    #: dropped and counted (health: bad_ts)
    ts_earliest: float = 946_684_800.0
    ts_ahead_s: float = field(default=86_400.0, metadata={"check": positive})
