"""Store days with known ground truth: who walked by, who came in, for how long, and what the air heard (pure,
apart from the two ``write_*`` functions, which write a pcap file).

``simulate(scenario, seed)`` turns a :class:`Scenario` into the probe requests a sensor in the store would capture
(:class:`Frame`, sorted by time) and the :class:`Truth` behind them: every person, whether staff, and their visits
``(start, end)`` in epoch seconds. The analytics accuracy tests and the sensor's randomization tests compare what
the pipeline estimates with this truth. The same seed always gives the same day.

People
    * passers-by walk past the shop window: weak signal (about -88 to -74 dBm), seen for 10-90 s;
    * visitors come in: strong signal (about -70 to -45 dBm), dwell log-normal around ``median_dwell_s``;
    * repeat visitors: on days after the first, ``repeat_fraction`` of the visitors are people who came before
      (same phone; a phone that randomizes still shows new MACs);
    * staff: in the shop for most of the opening hours, with a lunch break, on every day.

Phones (``MODELS``; vendor behaviours and their sources)
    * **Legacy / non-randomizing** devices (Android before 8.0, many laptops and IoT gadgets, phones with
      randomization turned off) probe with their burned-in, globally unique MAC and one sequence counter.
    * **Android 8.0+** randomizes the MAC in probe requests while not associated; **Android 10+** additionally uses a
      per-SSID random MAC when it associates (source.android.com, "MAC randomization behavior"; Martin et al. 2017,
      "A Study of MAC Address Randomization in Mobile Devices and When it Fails", PoPETs). Many Android chipsets keep
      one sequence counter across probe MAC changes (Martin et al. 2017; the real Pintor & Atzori capture in
      ``../shared/data`` shows a phone rotating every 15 s with the counter continuing and the first three octets
      ``da:a1:19`` kept). Others restart it. Models: ``android10-seq`` (rotates every few minutes, counter
      continues) and ``android12-reset`` (rotates every few minutes, counter restarts at a random value).
    * **iOS 8+** randomizes probe MACs; **iOS 14+** adds a per-network "private Wi-Fi address" for association,
      rotated periodically since iOS 18 (Apple Platform Security guide, "Wi-Fi privacy"; support.apple.com 102509).
      The real iPhone 11 capture (Baccichet et al., iOS 16.4.1, ``../shared/data``) shows 465 MACs for 782 probes:
      a new MAC for nearly every scan, each starting its sequence counter at a random value. Models: ``ios14``
      (new MAC every few minutes, counter restarts) and ``ios16-perscan`` (new MAC every scan, counter restarts).
    * Information elements: a phone model sends the same set of elements (rates, HT/VHT/HE capabilities, extended
      capabilities, vendor elements) whatever its MAC, which is what Vanhoef et al. 2016 ("Why MAC Address
      Randomization is not Enough", AsiaCCS) use to link rotating MACs. Some models send directed probes for
      remembered SSIDs; the DS parameter set carries the current channel. Neither is part of a stable fingerprint.

The frames go to a pcap with :func:`write_pcap` (radiotap, linktype 127; per-model templates built with scapy and
patched per frame, so that a 30,000-frame day writes in well under a second). :func:`write_demo_capture` writes
the demo's store day.
"""
from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from sensor import pcap
from sensor.frames import channel_number

Kind = Literal["passerby", "visitor", "staff"]

# ---------------------------------------------------------------------------------------------------------------
# phone models


def _ie(eid: int, body: bytes) -> bytes:
    return bytes([eid, len(body)]) + body


_RATES = _ie(1, bytes([0x02, 0x04, 0x0B, 0x16, 0x0C, 0x12, 0x18, 0x24]))
_RATES_OFDM = _ie(1, bytes([0x8C, 0x12, 0x98, 0x24, 0xB0, 0x48, 0x60, 0x6C]))
_EXT_RATES = _ie(50, bytes([0x30, 0x48, 0x60, 0x6C]))
_WPS = _ie(221, bytes.fromhex("0050f204104a000110103a000100"))
_P2P = _ie(221, bytes.fromhex("506f9a0902020025000605005858045106"))
_APPLE = _ie(221, bytes.fromhex("0017f20a000103040000000000"))
_BROADCOM = _ie(221, bytes.fromhex("00101802000000"))
_MS = _ie(221, bytes.fromhex("0050f208002100"))


def _ht(capinfo: int, ampdu: int, mcs0: int, mcs1: int) -> bytes:
    mcs = bytes([mcs0, mcs1]) + bytes(14)
    return _ie(45, struct.pack("<HB", capinfo, ampdu) + mcs + bytes(7))


def _vht(info: int) -> bytes:
    return _ie(191, struct.pack("<IHHHH", info, 0xFFFA, 0, 0xFFFA, 0))


def _he(mac_caps: bytes) -> bytes:
    """HE capabilities: 6 octets MAC caps, 11 octets PHY caps (40 MHz in 2.4 GHz, 80 MHz in 5 GHz; no 160 MHz
    sets, no PPE thresholds), and the <= 80 MHz RX/TX MCS maps."""
    phy = bytes.fromhex("06") + bytes(10)
    return _ie(255, bytes([35]) + mac_caps[:6].ljust(6, b"\0") + phy + bytes.fromhex("faff faff".replace(" ", "")))


@dataclass(frozen=True)
class Model:
    """A phone model: how it probes, and the information elements it sends (SSID and DS parameter excluded)."""

    name: str
    randomizes: bool
    #: mean seconds between MAC changes in probe requests; 0 = a new MAC every scan; ignored unless randomizes
    rotate_s: float
    #: the sequence counter restarts at a random value when the MAC changes
    seq_reset: bool
    #: elements after SSID (and, where ``ds_param``, after the DS parameter set)
    ies: bytes
    ds_param: bool = True
    #: probability that a scan includes directed probes for remembered SSIDs
    directed: float = 0.0
    #: first three octets of the burned-in MAC (the vendor's OUI)
    oui: bytes = b"\x00\x00\x00"
    #: keep the first three octets of the burned-in MAC when randomizing (seen in some Android builds)
    keep_prefix: bool = False


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("legacy-android", False, 0, False,
              _RATES + _EXT_RATES + _ht(0x016E, 0x03, 0xFF, 0x00) + _WPS, directed=0.6, oui=bytes.fromhex("f025b7")),
        Model("legacy-laptop", False, 0, False,
              _RATES + _EXT_RATES + _ht(0x01EF, 0x17, 0xFF, 0xFF) + _ie(127, bytes.fromhex("0000000000000040"))
              + _MS, directed=0.3, oui=bytes.fromhex("3c970e")),
        Model("android10-seq", True, 180, False,
              _RATES + _EXT_RATES + _ht(0x016E, 0x03, 0xFF, 0x00) + _ie(127, bytes.fromhex("0000080400000040"))
              + _vht(0x0F817032) + _WPS, directed=0.4, oui=bytes.fromhex("5c0a5b"), keep_prefix=True),
        Model("android12-reset", True, 240, True,
              _RATES + _EXT_RATES + _ht(0x01EF, 0x1B, 0xFF, 0xFF) + _ie(127, bytes.fromhex("04000a020140004020"))
              + _vht(0x0F8259B2) + _he(bytes.fromhex("01780010400207060002")) + _P2P + _BROADCOM,
              oui=bytes.fromhex("e4faed")),
        Model("ios14", True, 300, True,
              _RATES + _EXT_RATES + _ht(0x002D, 0x17, 0xFF, 0x00) + _ie(127, bytes.fromhex("0400080000000040"))
              + _vht(0x0F815832) + _APPLE, oui=bytes.fromhex("f0d1a9")),
        Model("ios16-perscan", True, 0, True,
              _RATES_OFDM + _ht(0x006F, 0x17, 0xFF, 0xFF) + _ie(127, bytes.fromhex("0400084000000040"))
              + _vht(0x0F825992) + _he(bytes.fromhex("0308081a00800c20")) + _APPLE,
              ds_param=False, oui=bytes.fromhex("a4cf99")),
    )
}
RANDOMIZING = tuple(n for n, m in MODELS.items() if m.randomizes)
FIXED = tuple(n for n, m in MODELS.items() if not m.randomizes)

# ---------------------------------------------------------------------------------------------------------------
# scenario and truth


@dataclass(frozen=True)
class Person:
    """One person and their phone. ``visits`` are ``(start, end)`` epoch seconds of presence near the sensor."""

    pid: int
    kind: Kind
    model: str
    mac: bytes  #: burned-in MAC (the only MAC a non-randomizing phone shows)
    rssi: float  #: mean received signal at the sensor, dBm
    visits: tuple[tuple[float, float], ...]
    ssids: tuple[bytes, ...] = ()

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"


@dataclass(frozen=True)
class Scenario:
    """A store's days. Defaults: one day, 10:00-22:00 in UTC+8, about 30,000 probe requests."""

    days: int = 1
    start_date: date = date(2026, 1, 5)
    utc_offset_h: float = 8.0
    open_h: float = 10.0
    close_h: float = 22.0
    passersby_per_day: int = 1200
    visitors_per_day: int = 240
    staff: int = 4
    #: share of each later day's visitors who came on an earlier day
    repeat_fraction: float = 0.25
    #: share of phones that randomize their probe MAC (drawn among the randomizing models)
    randomizing_fraction: float = 0.5
    median_dwell_s: float = 900.0
    #: mean seconds between a phone's probe scans (screen on and off mixed)
    scan_interval_s: float = 45.0
    #: frequencies the sensor hears (MHz)
    freqs: tuple[int, ...] = (2412, 2437, 2462)
    #: restrict phones to these models (empty: all)
    models: tuple[str, ...] = ()
    #: explicit people; when given they replace the generated population
    people: tuple[Person, ...] = ()

    def day_start(self, day: int) -> float:
        """Epoch seconds of local midnight of ``day`` (0-based)."""
        tz = timezone(timedelta(hours=self.utc_offset_h))
        return datetime.combine(self.start_date + timedelta(days=day), datetime.min.time(), tz).timestamp()


@dataclass(frozen=True, slots=True)
class Frame:
    """One probe request as the air carries it (before any radiotap or pcap framing)."""

    ts: float
    mac: bytes
    seq: int
    rssi: int | None
    freq: int
    ies: bytes  #: every information element, SSID first
    pid: int  #: whose phone sent it (ground truth; never written to a capture)


@dataclass(frozen=True)
class Truth:
    """What really happened: the people, and which person every MAC belonged to."""

    scenario: Scenario
    people: tuple[Person, ...]
    mac_owner: Mapping[bytes, int] = field(repr=False)

    @property
    def devices(self) -> int:
        """Phones that sent at least one frame."""
        return len(set(self.mac_owner.values()))

    @property
    def macs(self) -> int:
        """Distinct MACs on the air: what naive MAC counting reports as devices."""
        return len(self.mac_owner)

    def of_kind(self, kind: Kind) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.kind == kind)

    def visits_on(self, day: int, kind: Kind = "visitor") -> list[tuple[int, float, float]]:
        """``(pid, start, end)`` of the visits starting on ``day`` by people of ``kind``."""
        lo = self.scenario.day_start(day)
        hi = lo + 86400
        return [(p.pid, s, e) for p in self.people if p.kind == kind for s, e in p.visits if lo <= s < hi]


# ---------------------------------------------------------------------------------------------------------------
# population


def _random_mac(rng: random.Random, oui: bytes | None = None) -> bytes:
    if oui is not None:
        return oui + rng.randbytes(3)
    first = (rng.randrange(256) & 0xFC) | 0x02  # locally administered, unicast
    return bytes([first]) + rng.randbytes(5)


def _arrival(rng: random.Random, sc: Scenario, day: int, dwell: float) -> float:
    """An arrival time during opening hours, busier in the afternoon and evening."""
    span = sc.close_h - sc.open_h
    while True:
        x = rng.random()
        # triangular-ish weight peaking at 65 % of the opening hours
        if rng.random() < 0.4 + 0.6 * (1 - abs(x - 0.65) / 0.65):
            break
    start = sc.day_start(day) + (sc.open_h + x * span) * 3600
    close = sc.day_start(day) + sc.close_h * 3600
    return min(start, close - min(dwell, 600))


def _pick_model(rng: random.Random, sc: Scenario) -> str:
    pool = sc.models or tuple(MODELS)
    rand = [m for m in pool if MODELS[m].randomizes]
    fixed = [m for m in pool if not MODELS[m].randomizes]
    if rand and (not fixed or rng.random() < sc.randomizing_fraction):
        return rng.choice(rand)
    return rng.choice(fixed)


_SSIDS = (b"Starbucks", b"HomeNet-5G", b"ChinaNet-abc1", b"CMCC-WEB", b"TP-LINK_3F2A", b"office", b"iPhone")


def _person(rng: random.Random, sc: Scenario, pid: int, kind: Kind, visits: tuple[tuple[float, float], ...]) -> Person:
    model = _pick_model(rng, sc)
    rssi = {"passerby": rng.uniform(-88, -74), "visitor": rng.uniform(-70, -45), "staff": rng.uniform(-60, -40)}[kind]
    ssids = tuple(rng.sample(_SSIDS, rng.randint(1, 3))) if MODELS[model].directed else ()
    return Person(pid, kind, model, _random_mac(rng, MODELS[model].oui), rssi, visits, ssids)


def population(sc: Scenario, seed: int) -> tuple[Person, ...]:
    """The people of the scenario (its explicit ``people``, or generated from ``seed``)."""
    if sc.people:
        return sc.people
    rng = random.Random(f"keliu-population:{seed}")
    people: list[Person] = []
    visits: dict[int, list[tuple[float, float]]] = {}
    base: dict[int, Person] = {}

    def add(kind: Kind, span: tuple[float, float]) -> int:
        pid = len(base)
        base[pid] = _person(rng, sc, pid, kind, ())
        visits[pid] = [span]
        return pid

    staff_ids = [add("staff", (0.0, 0.0)) for _ in range(sc.staff)]
    for pid in staff_ids:
        visits[pid] = []
    earlier_visitors: list[int] = []
    for day in range(sc.days):
        d0 = sc.day_start(day)
        for pid in staff_ids:
            arrive = d0 + (sc.open_h - rng.uniform(0.1, 0.5)) * 3600
            lunch = d0 + rng.uniform(12.0, 14.0) * 3600
            leave = d0 + (sc.close_h + rng.uniform(0.05, 0.3)) * 3600
            visits[pid] += [(arrive, lunch), (lunch + rng.uniform(1800, 3600), leave)]
        for _ in range(sc.passersby_per_day):
            dwell = rng.uniform(10, 90)
            start = _arrival(rng, sc, day, dwell)
            add("passerby", (start, start + dwell))
        repeats = rng.sample(earlier_visitors, min(len(earlier_visitors), round(sc.repeat_fraction * sc.visitors_per_day)))
        today: list[int] = []
        for i in range(sc.visitors_per_day):
            dwell = min(3 * 3600.0, max(120.0, rng.lognormvariate(math.log(sc.median_dwell_s), 0.7)))
            start = _arrival(rng, sc, day, dwell)
            if i < len(repeats):
                visits[repeats[i]].append((start, start + dwell))
                today.append(repeats[i])
            else:
                today.append(add("visitor", (start, start + dwell)))
        earlier_visitors += [p for p in today if p not in set(earlier_visitors)]
    for pid, person in base.items():
        people.append(Person(person.pid, person.kind, person.model, person.mac, person.rssi,
                             tuple(sorted(visits[pid])), person.ssids))
    return tuple(people)


# ---------------------------------------------------------------------------------------------------------------
# frames


def _ssid_ie(ssid: bytes) -> bytes:
    return _ie(0, ssid)


def _frames_of(rng: random.Random, sc: Scenario, p: Person, owner: dict[bytes, int]) -> list[Frame]:
    model = MODELS[p.model]
    out: list[Frame] = []
    seq = rng.randrange(4096)
    mac = p.mac
    next_rotation = -math.inf
    for start, end in p.visits:
        t = start + rng.uniform(0, min(sc.scan_interval_s, end - start))
        while t < end:
            if model.randomizes and t >= next_rotation:
                mac = _random_mac(rng, p.mac[:3] if model.keep_prefix else None)
                if model.keep_prefix:
                    mac = bytes([mac[0] | 0x02]) + mac[1:]
                if model.seq_reset:
                    seq = rng.randrange(4096)
                next_rotation = t + (rng.expovariate(1 / model.rotate_s) if model.rotate_s else 0.0)
            owner.setdefault(mac, p.pid)
            freq = rng.choice(sc.freqs)
            ssids = [b""]
            if p.ssids and rng.random() < model.directed:
                ssids += list(p.ssids)
            ds = _ie(3, bytes([channel_number(freq)])) if model.ds_param else b""
            ft = t
            for ssid in ssids:
                for _ in range(rng.randint(1, 2)):
                    rssi = max(-95, min(-20, round(p.rssi + rng.gauss(0, 3))))
                    out.append(Frame(ft, mac, seq, rssi, freq, _ssid_ie(ssid) + ds + model.ies, p.pid))
                    seq = (seq + 1) & 0xFFF
                    ft += rng.uniform(0.001, 0.03)
            # frames sent on channels the sensor was not listening to still use sequence numbers
            seq = (seq + rng.randint(2, 12)) & 0xFFF
            t += rng.expovariate(1 / sc.scan_interval_s)
    return out


def simulate(sc: Scenario, seed: int) -> tuple[list[Frame], Truth]:
    """The probe requests of the scenario's days, sorted by time, and the truth behind them."""
    people = population(sc, seed)
    rng = random.Random(f"keliu-frames:{seed}")
    owner: dict[bytes, int] = {}
    frames: list[Frame] = []
    for p in people:
        frames += _frames_of(rng, sc, p, owner)
    frames.sort(key=lambda f: f.ts)
    return frames, Truth(sc, people, owner)


# ---------------------------------------------------------------------------------------------------------------
# pcap output (an edge)

# radiotap: version, pad, length, present = Flags | Channel | dBm antenna signal; then flags (1 byte), channel
# (2-byte aligned: freq, flags), signal.
_RT_LEN = 15
_OFF_FREQ = 10
_OFF_CHFLAGS = 12
_OFF_SIGNAL = 14
_OFF_SA = _RT_LEN + 10
_OFF_SEQ = _RT_LEN + 22


def _template(ies: bytes) -> bytearray:
    """Radiotap + probe request with ``ies``, built by scapy; per-frame fields are patched in afterwards."""
    from scapy.layers.dot11 import Dot11, Dot11ProbeReq, RadioTap

    pkt = RadioTap(present="Flags+Channel+dBm_AntSignal", Flags=0, ChannelFrequency=2412, ChannelFlags=0x00A0,
                   dBm_AntSignal=-50) / Dot11(type=0, subtype=4, addr1="ff:ff:ff:ff:ff:ff",
                                              addr2="02:00:00:00:00:01", addr3="ff:ff:ff:ff:ff:ff") / Dot11ProbeReq()
    raw = bytearray(bytes(pkt))
    if len(raw) != _RT_LEN + 24 or struct.unpack_from("<H", raw, 2)[0] != _RT_LEN:  # pragma: no cover - scapy
        raise RuntimeError("scapy built an unexpected radiotap layout")
    return raw + ies


def frame_bytes(frame: Frame, cache: dict[bytes, bytearray] | None = None) -> bytes:
    """The radiotap + 802.11 bytes of ``frame``."""
    cache = {} if cache is None else cache
    tpl = cache.get(frame.ies)
    if tpl is None:
        tpl = cache[frame.ies] = _template(frame.ies)
    buf = bytearray(tpl)
    struct.pack_into("<HH", buf, _OFF_FREQ, frame.freq, 0x00A0 if frame.freq < 3000 else 0x0140)
    struct.pack_into("<b", buf, _OFF_SIGNAL, -50 if frame.rssi is None else frame.rssi)
    buf[_OFF_SA:_OFF_SA + 6] = frame.mac
    struct.pack_into("<H", buf, _OFF_SEQ, (frame.seq & 0xFFF) << 4)
    return bytes(buf)


def write_pcap(path: str | Path, frames: Iterable[Frame]) -> int:
    """Write ``frames`` as a radiotap pcap (linktype 127) that tshark reads. Returns the number of frames."""
    cache: dict[bytes, bytearray] = {}
    return pcap.write(path, ((f.ts, frame_bytes(f, cache)) for f in frames))


DEMO = Scenario()


def write_demo_capture(path: str | Path, seed: int = 7) -> int:
    """Write the demo's store day (``DEMO``: about 30,000 probe requests) to ``path``. Returns the frame count."""
    frames, _truth = simulate(DEMO, seed)
    return write_pcap(path, frames)
