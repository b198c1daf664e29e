"""Hard store days for measuring de-randomization: many phone models, real OS behaviours, big crowds (pure).

:mod:`keliu.testing.simulate` writes small days with six phone models; this module makes the days that issue 17
asks the counting to survive, as numpy columns that :class:`sensor.frames.ProbeBatch` takes directly (no pcap, so a
two-day crowd simulates and identifies in seconds). The same ``(preset, seed)`` always gives the same days.

Phones (``PHONES``, 44 models, popularity weights from a Zipf-like market mix: in China the iPhone 12-15 family is
the single most common model group, and its members send one identical information-element set, so hundreds of
phones in a crowd share one fingerprint; Android models are many and each is rarer). Per model:

* **OS behaviour** (Martin et al. 2017; Vanhoef et al. 2016; Pintor & Atzori 2022; Baccichet's iPhone 11 capture):
  ``fixed`` (no randomization, one MAC and one sequence counter), ``timed`` (a new MAC every ``rotate_s`` seconds,
  3-15 minutes, either continuing the sequence counter or restarting it at a random value), ``perscan`` (a new MAC
  for every scan, counter restarted: iOS 16's unassociated probing).
* **Scans**: screen on, a scan every ``scan_on_s`` (exponential); screen off, every ``scan_off_s`` (exponential;
  iPhones are nearly silent with the screen off); screen spells alternate (on ~2 min, off ~5 min on average).
* **Bursts** (Matte et al. 2016): a scan is heard as ``burst`` frames on one of the sensor's channels, spaced by the
  model's own inter-frame time (``ifs_ms``), plus directed probes for remembered SSIDs with probability
  ``directed``. Frames sent on channels the sensor does not hear still advance the counter.
* **Second element sets** (``second``, measured per model on the Baccichet captures): some scans sent with another
  information-element set, on a MAC of their own for a per-scan phone (the iPhone 12's family sends the iPhone 11's
  set after a fifth of its scans, 7-12 dB weaker; the iPhone XR, the Oppo and the Samsung models sets of their own).

People: visitors (dwell log-uniform 12-120 min, signal -70 to -45 dBm), passers-by (5-90 s, -88 to -72 dBm),
staff (the whole opening hours with a lunch break, every day), repeat visitors on later days (same phone). Presets
(:data:`PRESETS`) follow the issue: ``none`` (nobody randomizes), ``half`` (half the phones rotate every 3-15 min
keeping their counter), ``all_reset`` (every phone rotates every 3-15 min and restarts its counter), ``native``
(every model behaves as it really does, per-scan iPhones included) and ``crowd`` (``native`` with a mall's crowd:
8,200 visitors and 41,000 passers-by a day, about 1,000 phones in range at the peak).
"""
from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Literal

import numpy as np

Behaviour = Literal["fixed", "timed", "perscan"]


@dataclass(frozen=True)
class SecondSet:
    """Scans a phone sends with a second information-element set, from MACs of its own (measured per model on the
    Baccichet captures, docs/METRICS.md "The simulator"): ``rate`` such scans per ordinary scan, each ``delay_s``
    after an ordinary scan (within the presence), ``frames`` frames heard, the signal ``db`` off the phone's own, in
    the element set of ``family`` (its own second set, or another model's: the iPhone 12 sends the iPhone 11's).
    A per-scan phone sends each on a new MAC; a timed or fixed one on the MAC it has. ``named``: its scans probe for
    the phone's preferred networks as its own do (the real Oppo Find X3 Neo: the same five directed SSIDs in both
    sets), with the model's ``directed`` chance per scan, one name per frame after the first."""

    rate: float
    family: str
    frames: tuple[int, int] = (1, 2)
    db: tuple[float, float] = (0.0, 0.0)
    delay_s: tuple[float, float] = (3.0, 40.0)
    named: bool = False

    @property
    def fingerprint(self) -> int:
        return zlib.crc32(b"crowd-family:" + self.family.encode())


@dataclass(frozen=True)
class Phone:
    name: str
    weight: float  #: popularity (relative share of phones)
    family: str  #: models of one family send the same information elements: one fingerprint
    behaviour: Behaviour
    seq_reset: bool = True
    rotate_s: tuple[float, float] = (180.0, 900.0)
    scan_on_s: float = 30.0
    scan_off_s: float = 300.0
    burst: tuple[int, int] = (1, 3)
    ifs_ms: float = 20.0
    directed: float = 0.0
    second: SecondSet | None = None

    @property
    def fingerprint(self) -> int:
        return zlib.crc32(b"crowd-family:" + self.family.encode())


#: second element sets, measured on the Baccichet captures (six phones, 2023; docs/METRICS.md "The simulator"):
#: the iPhone 12 sends the iPhone 11's set (apple-a13) in 8 scans besides its 37 (1-2 frames on one channel,
#: 7-12 dB weaker), and its family's models are given the same; the iPhone XR a set of its own in 5 scans besides
#: 32 (6-8 frames over three channels: 2-3 on one, 4-22 dB weaker); the iPhone 11 and the iPhone 7 (here the
#: iPhone 8) none, nor the iPhone 13-15's A16 family (not measured)
_APPLE_SECOND: dict[str, SecondSet] = {
    "apple-a15": SecondSet(8 / 37, "apple-a13", (1, 2), (-12.0, -7.0)),
    "iPhone XR": SecondSet(5 / 32, "apple-a12/second", (2, 3), (-22.0, -4.0)),
}
#: ... the Oppo Find X3 Neo a set of its own in 4 scans besides 10 (as many frames as its own scans, the same
#: signal), the Galaxy S21 Ultra in 1 scan besides 24 (2 frames, the same signal): (rate, frames, db)
_ANDROID_SECOND: dict[str, tuple[float, tuple[int, int], tuple[float, float]]] = {
    "OPPO": (4 / 10, (2, 4), (-2.0, 0.0)),
    "Samsung": (1 / 24, (2, 2), (-1.0, 1.0)),
}


def _phones() -> tuple[Phone, ...]:
    p: list[Phone] = []
    # Apple: one information-element set per chip generation (identical phones, identical fingerprint)
    for name, w, fam in (("iPhone 13", 9.0, "apple-a15"), ("iPhone 14", 8.0, "apple-a15"),
                         ("iPhone 15", 7.0, "apple-a16"), ("iPhone 12", 6.0, "apple-a15"),
                         ("iPhone 11", 4.0, "apple-a13"), ("iPhone 15 Pro", 3.0, "apple-a16"),
                         ("iPhone 14 Pro", 3.0, "apple-a16"), ("iPhone XR", 2.0, "apple-a13"),
                         ("iPhone SE 3", 1.5, "apple-a15"), ("iPhone 8", 1.0, "apple-a11")):
        p.append(Phone(name, w, fam, "perscan", True, scan_on_s=25.0, scan_off_s=600.0, burst=(1, 2), ifs_ms=22.0,
                       second=_APPLE_SECOND.get(name, _APPLE_SECOND.get(fam))))
    # Android and HarmonyOS: many models, each rarer; vendors differ in counter handling and scanning
    android = (
        ("Huawei Mate 60", 4.0, "hisi-9000s", True, 40.0, 240.0, 28.0),
        ("Huawei P60", 2.5, "hisi-9000s", True, 40.0, 240.0, 28.0),
        ("Huawei nova 11", 2.0, "hisi-778", True, 45.0, 240.0, 31.0),
        ("Honor 90", 2.0, "qc-7g1", False, 35.0, 200.0, 18.0),
        ("Honor X50", 1.5, "qc-6g1", False, 35.0, 200.0, 18.0),
        ("Xiaomi 14", 3.0, "qc-8g3", False, 30.0, 180.0, 15.0),
        ("Xiaomi 13", 2.0, "qc-8g2", False, 30.0, 180.0, 15.0),
        ("Redmi K70", 2.0, "qc-8g2", False, 30.0, 180.0, 15.0),
        ("Redmi Note 12", 2.5, "qc-4g1", False, 30.0, 180.0, 16.0),
        ("Redmi Note 13", 2.0, "mtk-d7200", True, 30.0, 180.0, 12.0),
        ("Redmi 12C", 1.0, "mtk-g85", True, 50.0, 300.0, 11.0),
        ("OPPO Reno 11", 2.0, "mtk-d8200", True, 35.0, 200.0, 12.0),
        ("OPPO Find X7", 1.0, "mtk-d9300", True, 35.0, 200.0, 12.0),
        ("OPPO A58", 1.5, "mtk-g99", True, 45.0, 300.0, 13.0),
        ("vivo X100", 1.5, "mtk-d9300", True, 35.0, 200.0, 12.0),
        ("vivo S18", 1.5, "qc-7g3", False, 35.0, 200.0, 17.0),
        ("vivo Y36", 1.2, "qc-680", False, 50.0, 300.0, 19.0),
        ("iQOO 12", 1.0, "qc-8g3", False, 30.0, 180.0, 15.0),
        ("OnePlus 12", 1.0, "qc-8g3-op", False, 30.0, 180.0, 14.0),
        ("OnePlus Ace 3", 0.8, "qc-8g2-op", False, 30.0, 180.0, 14.0),
        ("Realme GT5", 0.8, "qc-8g2-rm", False, 30.0, 180.0, 16.0),
        ("Realme 11", 0.6, "mtk-d6100", True, 45.0, 300.0, 13.0),
        ("Samsung S24", 1.0, "sam-s24", False, 40.0, 240.0, 25.0),
        ("Samsung S23", 0.8, "sam-s23", False, 40.0, 240.0, 25.0),
        ("Samsung A54", 0.6, "sam-e1380", False, 45.0, 300.0, 26.0),
        ("Meizu 21", 0.5, "qc-8g3-mz", False, 35.0, 200.0, 15.0),
        ("ZTE nubia Z60", 0.4, "qc-8g3-zte", True, 35.0, 200.0, 15.0),
        ("Lenovo Legion Y70", 0.3, "qc-8g1-len", False, 35.0, 200.0, 15.0),
        ("Google Pixel 8", 0.2, "tensor-g3", True, 35.0, 200.0, 20.0),
        ("Nothing Phone 2", 0.1, "qc-8g1-np", False, 35.0, 200.0, 15.0),
    )
    for name, w, fam, reset, on, off, ifs in android:
        vendor = name.split()[0]
        second = None
        if vendor in _ANDROID_SECOND:
            rate, frames, db = _ANDROID_SECOND[vendor]
            second = SecondSet(rate, fam + "/second", frames, db, named=vendor == "OPPO")
        p.append(Phone(name, w, fam, "timed", reset, scan_on_s=on, scan_off_s=off, burst=(2, 4), ifs_ms=ifs,
                       directed=0.3, second=second))
    # old phones and gadgets that do not randomize
    for name, w, fam, on in (("Android 7 phone", 1.5, "legacy-a7", 40.0), ("Feature phone", 0.6, "legacy-mtk", 60.0),
                             ("Windows laptop", 0.5, "intel-ax201", 60.0), ("Smart watch", 0.4, "wear-os", 120.0)):
        p.append(Phone(name, w, fam, "fixed", False, scan_on_s=on, scan_off_s=4 * on, burst=(1, 3), ifs_ms=30.0,
                       directed=0.5))
    return tuple(p)


PHONES: tuple[Phone, ...] = _phones()

Preset = Literal["none", "half", "all_reset", "native", "crowd"]


@dataclass(frozen=True)
class CrowdScenario:
    preset: Preset = "half"
    days: int = 2
    start_date: date = date(2026, 3, 2)
    utc_offset_h: float = 8.0
    open_h: float = 10.0
    close_h: float = 22.0
    visitors_per_day: int = 300
    passersby_per_day: int = 2000
    staff: int = 5
    repeat_fraction: float = 0.25
    visitor_dwell_s: tuple[float, float] = (720.0, 7200.0)
    passerby_s: tuple[float, float] = (5.0, 90.0)
    freqs: tuple[int, ...] = (2412, 2437, 2462)
    #: share of frames the sensor hears (collisions, the channel hop)
    capture: float = 0.9

    def day_start(self, day: int) -> float:
        tz = timezone(timedelta(hours=self.utc_offset_h))
        return datetime.combine(self.start_date + timedelta(days=day), datetime.min.time(), tz).timestamp()


PRESETS: dict[str, CrowdScenario] = {
    "none": CrowdScenario("none"),
    "half": CrowdScenario("half"),
    "all_reset": CrowdScenario("all_reset"),
    "native": CrowdScenario("native"),
    # a mall: about 1,000 phones in range at the evening peak (seed 1: 1,012; ``Truth.peak_in_range``)
    "crowd": CrowdScenario("crowd", visitors_per_day=8200, passersby_per_day=41000, staff=40),
}


def evening(sc: CrowdScenario, open_h: float = 17.0, close_h: float = 19.0) -> CrowdScenario:
    """``sc`` on a short day of ``open_h``-``close_h`` (one day) with as many visitors and passers-by per open hour
    (staff: a quarter): a crowd of about the day's peak that simulates and links in seconds, for iterating on the
    linker (the ``crowd`` preset's evening, seed 1: 976 phones in range at the peak, against the full day's 1,012).
    The presets' frames are not touched."""
    keep = (close_h - open_h) / (sc.close_h - sc.open_h)
    return replace(sc, days=1, open_h=open_h, close_h=close_h, visitors_per_day=round(sc.visitors_per_day * keep),
                   passersby_per_day=round(sc.passersby_per_day * keep), staff=max(1, sc.staff // 4))


def behaviour_of(sc: CrowdScenario, phone: Phone, rng: np.random.Generator) -> Phone:
    """The phone as the preset makes it behave."""
    if sc.preset == "none":
        return replace(phone, behaviour="fixed")
    if sc.preset == "half":
        if rng.random() < 0.5:
            return replace(phone, behaviour="timed", seq_reset=False)
        return replace(phone, behaviour="fixed")
    if sc.preset == "all_reset":
        return replace(phone, behaviour="timed", seq_reset=True)
    return phone


@dataclass(frozen=True)
class Person:
    pid: int
    kind: str  #: visitor, passerby, staff
    phone: Phone
    rssi: float
    visits: tuple[tuple[float, float], ...]
    ssids: tuple[bytes, ...]


@dataclass(frozen=True, eq=False)
class Air:
    """The frames the sensor hears (columns, sorted by time) and whose phone sent each (``pid``, ground truth)."""

    ts: np.ndarray
    mac: np.ndarray  # uint64
    seq: np.ndarray
    rssi: np.ndarray
    freq: np.ndarray
    fp: np.ndarray
    ssid: tuple[bytes, ...]
    pid: np.ndarray
    #: int8 ``sensor.frames.KINDS`` per frame; None: every frame a probe request (the crowd's own air)
    kind: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def merged(self, other: Air) -> Air:
        """This air and ``other``'s frames (association frames, :mod:`keliu.testing.guestwifi`) in time order,
        this air's first at equal times."""
        ts = np.concatenate([self.ts, other.ts])
        order = np.argsort(ts, kind="stable")

        def col(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.concatenate([a, b])[order]

        kinds = [np.zeros(len(x), np.int8) if x.kind is None else x.kind for x in (self, other)]
        table = np.array([*self.ssid, *other.ssid], object)
        return Air(ts[order], col(self.mac, other.mac), col(self.seq, other.seq), col(self.rssi, other.rssi),
                   col(self.freq, other.freq), col(self.fp, other.fp), tuple(table[order].tolist()),
                   col(self.pid, other.pid), col(*kinds))

    def batch(self, i: int = 0, j: int | None = None):  # type: ignore[no-untyped-def]
        """Frames ``i:j`` as a :class:`sensor.frames.ProbeBatch` (fingerprints and SSIDs given)."""
        from sensor.frames import ProbeBatch

        j = len(self) if j is None else j
        z = np.zeros(j - i, np.int64)
        kind = None if self.kind is None or not self.kind[i:j].any() else self.kind[i:j]
        return ProbeBatch(b"", self.ts[i:j], self.mac[i:j], self.seq[i:j], self.rssi[i:j], self.freq[i:j], z, z, z,
                          fps=self.fp[i:j], ssids=self.ssid[i:j], kind=kind)


@dataclass(frozen=True)
class Truth:
    scenario: CrowdScenario
    people: tuple[Person, ...]
    macs: int

    def peak_in_range(self, day: int = 0) -> int:
        """The most phones present at once on ``day`` (visitors, passers-by and staff whose presence overlaps)."""
        lo = self.scenario.day_start(day)
        hi = lo + 86400
        events = sorted((t, d) for p in self.people for s, e in p.visits if s < hi and e >= lo
                        for t, d in ((s, 1), (e, -1)))
        here = peak = 0
        for _t, d in events:
            here += d
            peak = max(peak, here)
        return peak

    def day(self, air: Air, day: int, min_dwell_s: float = 300.0, passerby_rssi: int = -90) -> dict[str, float]:
        """What a perfect counter reports for ``day``: visitors (a visit of at least the minimum dwell), passers-by
        (heard at or above ``passerby_rssi``, neither visitor nor staff), median true dwell, capture rate, phones
        heard, staff heard."""
        lo = self.scenario.day_start(day)
        hi = lo + 86400
        by = {p.pid: p for p in self.people}
        dwell = [e - s for p in self.people if p.kind != "staff" for s, e in p.visits
                 if lo <= s < hi and e - s >= min_dwell_s]
        visitors = {p.pid for p in self.people if p.kind != "staff"
                    and any(lo <= s < hi and e - s >= min_dwell_s for s, e in p.visits)}
        m = (air.ts >= lo) & (air.ts < hi)
        heard = set(np.unique(air.pid[m & (air.rssi >= passerby_rssi)]).tolist())
        phones = set(np.unique(air.pid[m]).tolist())
        staff = {pid for pid in heard if by[pid].kind == "staff"}
        pas = heard - visitors - staff
        v = len(visitors)
        return {"visitors": v, "passersby": len(pas), "median_dwell_s": float(np.median(dwell)) if dwell else 0.0,
                "capture_rate": v / (v + len(pas)) if v + len(pas) else 0.0, "phones": len(phones),
                "staff": len(staff), "macs": len(np.unique(air.mac[m]))}


_SSIDS = tuple(s.encode() for s in ("ChinaNet-5G", "CMCC-WEB", "HomeWiFi", "TP-LINK_8A2C", "office-guest",
                                    "Starbucks", "MIX-Mall-Free", "HUAWEI-1F3B", "Xiaomi_55E1", "iPhone"))


def _arrival(rng: np.random.Generator, sc: CrowdScenario, day: int, n: int) -> np.ndarray:
    """Arrival times (busier in the afternoon and evening), epoch seconds."""
    x = rng.beta(2.6, 1.8, n)
    return sc.day_start(day) + (sc.open_h + x * (sc.close_h - sc.open_h)) * 3600


def population(sc: CrowdScenario, seed: int) -> tuple[Person, ...]:
    rng = np.random.default_rng([seed, 17, zlib.crc32(sc.preset.encode())])
    weights = np.array([ph.weight for ph in PHONES])
    weights /= weights.sum()
    people: list[Person] = []

    def new(kind: str, visits: list[tuple[float, float]]) -> Person:
        phone = behaviour_of(sc, PHONES[int(rng.choice(len(PHONES), p=weights))], rng)
        lo, hi = {"visitor": (-70, -45), "passerby": (-88, -72), "staff": (-62, -42)}[kind]
        ssids = tuple(rng.choice(np.array(_SSIDS, object), rng.integers(1, 4), replace=False).tolist()) \
            if phone.directed else ()
        return Person(len(people), kind, phone, float(rng.uniform(lo, hi)), tuple(visits), ssids)

    staff_visits: list[list[tuple[float, float]]] = [[] for _ in range(sc.staff)]
    for day in range(sc.days):
        d0 = sc.day_start(day)
        for v in staff_visits:
            arrive = d0 + (sc.open_h - rng.uniform(0.1, 0.5)) * 3600
            lunch = d0 + rng.uniform(12.0, 14.0) * 3600
            v += [(arrive, lunch), (lunch + rng.uniform(1800, 3600), d0 + (sc.close_h + rng.uniform(0.05, 0.3)) * 3600)]
    for v in staff_visits:
        people.append(new("staff", v))
    visitors: dict[int, list[tuple[float, float]]] = {}
    vis_people: dict[int, Person] = {}
    close = [sc.day_start(d) + sc.close_h * 3600 for d in range(sc.days)]
    for day in range(sc.days):
        starts = _arrival(rng, sc, day, sc.passersby_per_day)
        for s, d in zip(starts.tolist(), rng.uniform(*sc.passerby_s, sc.passersby_per_day).tolist()):
            people.append(new("passerby", [(s, s + d)]))
        earlier = [pid for pid in vis_people if visitors[pid] and visitors[pid][-1][0] < sc.day_start(day)]
        n_rep = min(len(earlier), round(sc.repeat_fraction * sc.visitors_per_day))
        repeats = rng.choice(np.array(earlier, np.int64), n_rep, replace=False).tolist() if n_rep else []
        dwell = np.exp(rng.uniform(math.log(sc.visitor_dwell_s[0]), math.log(sc.visitor_dwell_s[1]),
                                   sc.visitors_per_day))
        starts = _arrival(rng, sc, day, sc.visitors_per_day)
        for i, (s, d) in enumerate(zip(starts.tolist(), dwell.tolist())):
            s = min(s, close[day] - d) if d < 6 * 3600 else s
            if i < len(repeats):
                visitors[int(repeats[i])].append((s, s + d))
            else:
                p = new("visitor", [])
                vis_people[p.pid] = p
                visitors[p.pid] = [(s, s + d)]
                people.append(p)
    return tuple(replace(p, visits=tuple(visitors[p.pid])) if p.pid in visitors else p for p in people)


def _scans(rng: np.random.Generator, ph: Phone, start: float, end: float) -> np.ndarray:
    """Scan times of one presence: screen spells alternate (on ~2 min, off ~5 min), each with its own scan rate."""
    out: list[np.ndarray] = []
    t = start
    on = bool(rng.random() < 0.45)
    while t < end:
        spell = float(rng.exponential(120.0 if on else 300.0))
        stop = min(end, t + spell)
        mean = ph.scan_on_s if on else ph.scan_off_s
        n = max(4, int((stop - t) / mean * 2) + 4)
        gaps = rng.exponential(mean, n)
        times = t + np.cumsum(gaps) - gaps[0] * rng.random()
        out.append(times[(times >= t) & (times < stop)])
        t = stop
        on = not on
    return np.concatenate(out) if out else np.zeros(0)


def _second_scans(rng: np.random.Generator, ph: Phone, rssi: float, scans: np.ndarray, scan_mac: np.ndarray,
                  scan_seq: np.ndarray, end: float, freqs: np.ndarray, capture: float,
                  names: tuple[np.random.Generator, list[int]] | None = None) -> tuple[np.ndarray, ...]:
    """The frames heard of one presence's scans with the phone's second element set (``ph.second``), as columns
    ``ts, mac, seq, rssi, freq, fp, ssid``: after each ordinary scan, with probability ``rate``, one such scan
    ``delay_s`` later (still within the presence), on a new MAC (per-scan phones) or the MAC of that scan, its
    counter restarted on a new MAC and continuing the scan's otherwise. ``names``: a random stream of their own
    (the frames are those without names) and the person's SSID indices, for a ``named`` set."""
    sec = ph.second
    assert sec is not None
    k = len(scans)
    pick = rng.random(k) < sec.rate
    at = scans + rng.uniform(*sec.delay_s, k)
    pick &= at < end
    i = np.flatnonzero(pick)
    n = len(i)
    nb = rng.integers(sec.frames[0], sec.frames[1] + 1, n)
    total = int(nb.sum())
    of = np.repeat(np.arange(n), nb)
    pos = np.arange(total) - np.repeat(np.cumsum(nb) - nb, nb)
    ts = at[i][of] + pos * np.abs(rng.normal(ph.ifs_ms, ph.ifs_ms * 0.15, total)) / 1000.0
    if ph.behaviour == "perscan":
        mac = _random_macs(rng, n)
        seq0 = rng.integers(0, 4096, n)
    else:
        mac = scan_mac[i]
        seq0 = scan_seq[i] + 1
    seq = (seq0[of] + pos) & 0xFFF
    sig = np.clip(np.round(rssi + rng.uniform(*sec.db, n)[of] + rng.normal(0, 3.5, total)
                           + rng.normal(0, 2.0, n)[of]), -99, -20)
    heard = (rng.random(total) < capture) & (sig >= -95)
    freq = freqs[rng.integers(0, len(freqs), n)][of]
    ssid = np.zeros(total, np.int64)
    if sec.named and names is not None and names[1]:
        rng_names, ids = names
        directed = (rng_names.random(n) < ph.directed)[of] & (pos > 0)
        ssid[directed] = np.array(ids, np.int64)[(pos[directed] - 1) % len(ids)]
    return (ts[heard], mac[of][heard], seq[heard].astype(np.int64), sig[heard].astype(np.int64), freq[heard],
            np.full(int(heard.sum()), sec.fingerprint, np.int64), ssid[heard])


def _random_macs(rng: np.random.Generator, n: int) -> np.ndarray:
    m = rng.integers(0, 1 << 48, n, dtype=np.uint64)
    return (m & ~np.uint64(0x01 << 40)) | np.uint64(0x02 << 40)  # locally administered, unicast


def simulate(sc: CrowdScenario | str, seed: int) -> tuple[Air, Truth]:
    """The frames the sensor hears on the scenario's days, and the truth."""
    if isinstance(sc, str):
        sc = PRESETS[sc]
    return heard(sc, population(sc, seed), seed)


def heard(sc: CrowdScenario, people: tuple[Person, ...], seed: int) -> tuple[Air, Truth]:
    """The frames the sensor hears of ``people`` (a population, or a few people a test made), and the truth."""
    rng = np.random.default_rng([seed, 71, zlib.crc32(sc.preset.encode())])
    # second element sets draw from a stream of their own: the phones' ordinary frames are those of a simulator
    # without them, frame for frame
    rng2 = np.random.default_rng([seed, 73, zlib.crc32(sc.preset.encode())])
    rng3 = np.random.default_rng([seed, 79, zlib.crc32(sc.preset.encode())])  # ... and their networks' names
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("ts", "mac", "seq", "rssi", "freq", "fp", "ssid", "pid")}
    ssid_table: list[bytes] = [b""]
    ssid_index: dict[bytes, int] = {b"": 0}
    freqs = np.array(sc.freqs, np.int64)
    for p in people:
        ph = p.phone
        burned = int(rng.integers(0, 1 << 48)) & ~(0x03 << 40)  # globally unique
        seq = int(rng.integers(0, 4096))
        for s in p.ssids:
            if s not in ssid_index:
                ssid_index[s] = len(ssid_table)
                ssid_table.append(s)
        ssid_ids = [ssid_index[s] for s in p.ssids]
        mac_until = -math.inf
        mac = burned
        for start, end in p.visits:
            scans = _scans(rng, ph, start, end)
            if not len(scans):
                continue
            k = len(scans)
            nb = rng.integers(ph.burst[0], ph.burst[1] + 1, k)
            directed = (rng.random(k) < ph.directed) & bool(ssid_ids)
            nd = np.where(directed, len(ssid_ids), 0)
            per = nb + nd
            total = int(per.sum())
            scan_of = np.repeat(np.arange(k), per)
            pos = np.arange(total) - np.repeat(np.cumsum(per) - per, per)
            ifs = np.abs(rng.normal(ph.ifs_ms, ph.ifs_ms * 0.15, total)) / 1000.0
            ts = scans[scan_of] + pos * ifs
            # MACs: one per scan (perscan), per rotation period (timed) or the burned-in one
            if ph.behaviour == "perscan":
                scan_mac = _random_macs(rng, k)
                new_mac = np.ones(k, bool)
            elif ph.behaviour == "timed":
                scan_mac = np.empty(k, np.uint64)
                new_mac = np.zeros(k, bool)
                for i, t in enumerate(scans.tolist()):
                    if t >= mac_until:
                        mac = int(_random_macs(rng, 1)[0])
                        mac_until = t + float(rng.uniform(*ph.rotate_s))
                        new_mac[i] = True
                    scan_mac[i] = mac
            else:
                scan_mac = np.full(k, burned, np.uint64)
                new_mac = np.zeros(k, bool)
            # sequence numbers: +1 per frame sent, + frames on unheard channels between scans; restart on a new MAC
            step = np.ones(total, np.int64)
            first = pos == 0
            step[first] = rng.integers(2, 14, int(first.sum()))
            if ph.seq_reset and ph.behaviour != "fixed":
                reset_at = np.flatnonzero(first & new_mac[scan_of])
                base = np.cumsum(step)
                seqs = np.empty(total, np.int64)
                bounds = [*reset_at.tolist(), total]
                if bounds[0] != 0:
                    bounds.insert(0, 0)
                for a, b in itertools.pairwise(bounds):
                    r0 = int(rng.integers(0, 4096))
                    seqs[a:b] = r0 + base[a:b] - base[a]
                seq = int(seqs[-1])
            else:
                seqs = seq + np.cumsum(step)
                seq = int(seqs[-1])
            seqs &= 0xFFF
            heard = rng.random(total) < sc.capture
            rssi = np.clip(np.round(p.rssi + rng.normal(0, 3.5, total) + rng.normal(0, 2.0, k)[scan_of]), -99, -20)
            heard &= rssi >= -95
            ssid = np.zeros(total, np.int64)
            if nd.any():
                dpos = pos - nb[scan_of]
                is_d = dpos >= 0
                ssid[is_d] = np.array(ssid_ids, np.int64)[dpos[is_d]]
            freq = freqs[rng.integers(0, len(freqs), k)][scan_of]
            cols["ts"].append(ts[heard])
            cols["mac"].append(scan_mac[scan_of][heard])
            cols["seq"].append(seqs[heard])
            cols["rssi"].append(rssi[heard].astype(np.int64))
            cols["freq"].append(freq[heard])
            cols["fp"].append(np.full(int(heard.sum()), ph.fingerprint, np.int64))
            cols["ssid"].append(ssid[heard])
            cols["pid"].append(np.full(int(heard.sum()), p.pid, np.int64))
            if ph.second is not None:
                last = np.cumsum(per) - 1
                alt = _second_scans(rng2, ph, p.rssi, scans, scan_mac, seqs[last], end, freqs, sc.capture,
                                    (rng3, ssid_ids))
                for key, col in zip(("ts", "mac", "seq", "rssi", "freq", "fp", "ssid"), alt):
                    cols[key].append(col)
                cols["pid"].append(np.full(len(alt[0]), p.pid, np.int64))
    ts = np.concatenate(cols["ts"])
    order = np.argsort(ts, kind="stable")
    c = {k: np.concatenate(v)[order] for k, v in cols.items()}
    table = np.array(ssid_table, object)
    air = Air(c["ts"], c["mac"].astype(np.uint64), c["seq"], c["rssi"], c["freq"], c["fp"],
              tuple(table[c["ssid"]].tolist()), c["pid"])
    return air, Truth(sc, people, len(np.unique(air.mac)))
