"""The records that cross from the sensor to analytics (pure, frozen).

A ``Sighting`` carries no MAC address: only the keyed device id (see ``sensor.identity``). ``sid`` is an
idempotency key, so delivering the same sighting twice stores it once.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sighting:
    sid: str  #: idempotency key: hex digest over (sensor, timestamp, device, sequence number)
    ts: float  #: epoch seconds (UTC)
    store: str
    sensor: str
    device: str  #: estimated device id (hex HMAC); rotating MACs of one phone share it
    rssi: int | None  #: dBm
    freq: int | None  #: MHz
    seq: int | None  #: 802.11 sequence number
    randomized: bool  #: the source MAC was locally administered
    #: how it was made: "probe" (a probe request the sensor heard; the device id is an estimate when MACs rotate)
    #: or "connected" (a station associated to this AP, from hostapd: its MAC is stable on this network, so the
    #: device is exact)
    basis: str = "probe"
