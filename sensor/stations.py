"""The AP's own stations: hostapd's station list in, keyed sightings of basis "connected" out (pure).

hostapd answers ``STA-FIRST`` / ``STA-NEXT <addr>`` on its control interface with one station each, and
``hostapd_cli all_sta`` prints those answers one after the other: the station's address alone on the first line,
then ``key=value`` lines (``flags=[AUTH][ASSOC][AUTHORIZED]``, ``aid``, ``rx_packets``, ``inactive_msec``,
``signal`` in dBm, ``rx_rate_info``, ``connected_time`` in seconds, ...; which keys appear depends on the driver
and the build). :func:`parse_stations` reads that text; :func:`station_sightings` turns the associated stations of
one poll into sightings, and :func:`poll_record` records the poll itself (the list was heard, with how many
stations: no device) by 5-minute slot, merged with the slot's other polls by :func:`merge_polls`, so analytics can
tell "nobody connected" from "the list was not heard".

A connected phone keeps one MAC on this network (iOS and Android use a per-network address that rotates at most
daily or on a reconnect), so its device id is exact: the HMAC of that MAC under the day's period key
(:func:`sensor.identity.device_id`, the same keying and rotation as the sensor's own ids; never the raw MAC). Such
sightings are marked ``basis="connected"``: analytics counts them as connected stations, apart from the probe-based
estimates (the two ids of one phone are never added together). The sensor keys the address of each association
request it hears with the same :func:`station_device` (``Sighting.station``), which is how analytics pairs a
connected station with the phone's probe-based device of the same day to calibrate the estimates.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sensor.identity import (
    PrivacyPolicy,
    Registry,
    device_id,
    is_randomized,
    mac_bytes,
    member_key,
    period_key,
)
from sensor.records import Sighting, StationPoll

#: the span of one :class:`sensor.records.StationPoll`: a poll every 10 s is one row per 5 minutes, not 30.
#: ``keliu sensor stations --interval`` is at most half of it, so a poller that runs is heard in every slot
POLL_SLOT_S = 300

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


@dataclass(frozen=True)
class Station:
    """One station of hostapd's list. ``mac`` stays in memory: it is keyed before anything is written."""

    mac: str
    flags: frozenset[str]
    signal: int | None  #: dBm of the last frames received; None when the driver gives none (or 0)
    connected_time: int | None  #: seconds since association
    inactive_msec: int | None

    @property
    def associated(self) -> bool:
        return "ASSOC" in self.flags


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip().split()[0])
    except (ValueError, IndexError):
        return None


def parse_stations(text: str) -> list[Station]:
    """Every station in ``text`` (``STA-FIRST``/``STA-NEXT`` answers, or ``hostapd_cli all_sta`` output).

    A block starts at a line that is a MAC address. Lines before the first such line (a ``Selected interface``
    banner), ``FAIL`` answers and lines without ``=`` are skipped; a value that is not a number is None."""
    out: list[Station] = []
    mac: str | None = None
    fields: dict[str, str] = {}

    def close() -> None:
        if mac is None:
            return
        flags = frozenset(re.findall(r"\[([A-Z0-9_]+)\]", fields.get("flags", "")))
        signal = _int(fields.get("signal"))
        out.append(Station(mac.lower(), flags, signal if signal else None, _int(fields.get("connected_time")),
                           _int(fields.get("inactive_msec"))))

    for raw in text.splitlines():
        line = raw.strip()
        if _MAC.match(line):
            close()
            mac, fields = line, {}
        elif mac is not None and "=" in line:
            key, _, value = line.partition("=")
            fields.setdefault(key.strip(), value)
    close()
    return out


def station_device(raw: bytes, ts: float, master: bytes, policy: PrivacyPolicy, registry: Registry,
                   ignore: frozenset[bytes] = frozenset()) -> str | None:
    """The keyed id the AP's station list gives the 6-byte address ``raw`` at ``ts``, or None when its sightings
    are dropped (an ignored address, an opted-out device).

    The member id for a registered member; else the HMAC of the address under the period key of ``ts``
    (``policy.period``: one local day in strict mode, a block of ``link_days`` in linked mode), as the sensor keys
    a fixed MAC. :func:`station_sightings` keys the stations with it, and the sensor keys the address of every
    association request it hears with it too (``Sighting.station``), so the two ids of one phone meet under the
    same key and the same day rule, and never as a MAC."""
    if raw in ignore:
        return None
    if registry.members or registry.optouts:
        mid = device_id(member_key(master), raw)
        if mid in registry.optouts:
            return None
        if mid in registry.members:
            return mid
    return device_id(period_key(master, policy.period(ts)), raw)


def station_sightings(stations: list[Station], now: float, store: str, sensor: str, master: bytes,
                      policy: PrivacyPolicy, sid_key: bytes, *, registry: Registry | None = None,
                      ignore: frozenset[str] = frozenset(), freq: int | None = None,
                      max_inactive_ms: int = 60_000) -> list[Sighting]:
    """One sighting per associated station heard from within ``max_inactive_ms``, at ``now``.

    The device id is :func:`station_device`'s: the period key of ``now``, or the member id for a registered
    member; an opted-out device and an ignored MAC (``ignore``: lower-case addresses, ``[sensor] ignore_macs``)
    give nothing. ``sid`` is keyed over (sensor, time, device), so a poll re-delivered is stored once. Stations not
    associated (authenticating, leaving) and stations silent for longer than ``max_inactive_ms`` (out of range, not
    yet timed out by hostapd) give nothing."""
    reg = registry or Registry()
    us = round(now * 1e6)
    out = []
    for st in stations:
        if not st.associated or (st.inactive_msec is not None and st.inactive_msec > max_inactive_ms):
            continue
        if st.mac in ignore:
            continue
        raw = mac_bytes(st.mac)
        dev = station_device(raw, now, master, policy, reg)
        if dev is None:
            continue
        sid = hashlib.blake2b(f"{sensor}\0{us}\0{dev}\0connected".encode(), key=sid_key, digest_size=16).hexdigest()
        out.append(Sighting(sid=sid, ts=now, store=store, sensor=sensor, device=dev, rssi=st.signal, freq=freq,
                            seq=None, randomized=is_randomized(raw), basis="connected"))
    return out


def poll_record(store: str, sensor: str, now: float, associated: int) -> StationPoll:
    """The record of one successful poll at ``now`` that found ``associated`` stations (its slot's start)."""
    if associated < 0:
        raise ValueError(f"a poll cannot find {associated} stations")
    return StationPoll(store=store, sensor=sensor, slot=int(now // POLL_SLOT_S) * POLL_SLOT_S, first=now, last=now,
                       stations=associated)


def merge_polls(polls: Iterable[StationPoll]) -> list[StationPoll]:
    """One record per (store, sensor, slot): the first poll's time the smallest, the last the largest, the stations
    the most; sorted by (store, sensor, slot) (an upsert takes its row locks in this order)."""
    out: dict[tuple[str, str, int], StationPoll] = {}
    for p in polls:
        key = (p.store, p.sensor, p.slot)
        q = out.get(key)
        out[key] = p if q is None else StationPoll(p.store, p.sensor, p.slot, min(p.first, q.first),
                                                   max(p.last, q.last), max(p.stations, q.stations))
    return [out[k] for k in sorted(out)]


def poll_to_dict(p: StationPoll) -> dict[str, Any]:
    """A poll record as JSON-able values (the spool, the Celery sink)."""
    return asdict(p)


def poll_from_dict(d: Mapping[str, Any]) -> StationPoll:
    """The record of :func:`poll_to_dict`; anything else (a missing or unknown field, a slot off the 5-minute grid,
    a negative count) raises ValueError naming it."""
    fields = ("store", "sensor", "slot", "first", "last", "stations")
    if set(d) != set(fields):
        raise ValueError(f"a station poll record has the fields {', '.join(fields)}, not {', '.join(sorted(d))}")
    p = StationPoll(store=str(d["store"]), sensor=str(d["sensor"]), slot=int(d["slot"]), first=float(d["first"]),
                    last=float(d["last"]), stations=int(d["stations"]))
    if p.slot % POLL_SLOT_S or not p.slot <= p.first <= p.last < p.slot + POLL_SLOT_S or p.stations < 0:
        raise ValueError(f"a station poll record out of its slot or negative: {dict(d)}")
    return p
