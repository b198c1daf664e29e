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
    #: what was heard: ``probe`` (a probe request), ``assoc`` or ``reassoc`` (the device's association or
    #: reassociation request to an access point, from its per-network address)
    kind: str = "probe"
    #: on an association or reassociation sighting only: the keyed id of the address it came from, exactly as the
    #: AP's station list keys that address (:func:`sensor.stations.station_device`), where ``device`` may be the
    #: linked device of the phone's probes. It joins a phone's probe-based id to its connected station's id of the
    #: same day (analytics' calibration, docs/METRICS.md); None on probes and on connected-station sightings
    station: str | None = None


@dataclass(frozen=True, slots=True)
class StationPoll:
    """The AP's station list heard: one sensor's successful polls of hostapd in one 5-minute slot, merged
    (:func:`sensor.stations.merge_polls`). It says the list was read, also when nobody was connected, which a poll
    that found no station cannot say with sightings. No device, no MAC: only how many stations were associated.

    Every field merges by min or max, so a record delivered twice, or in pieces, stores the same row."""

    store: str
    sensor: str
    slot: int  #: epoch seconds (UTC) of the slot's start, a multiple of ``sensor.stations.POLL_SLOT_S``
    first: float  #: epoch seconds of the slot's first poll
    last: float  #: epoch seconds of its last poll
    stations: int  #: the most stations associated at one of its polls
