"""Visitors who join the store's guest Wi-Fi, for a crowd of :mod:`keliu.testing.crowd` (pure).

The crowd's phones only probe; this module adds, as outputs of their own, what the phones that join the guest
Wi-Fi show besides: the frames the sensor hears when they associate, and the AP's station list (hostapd's, polled
by ``keliu sensor stations``). The crowd's own frames are untouched: everything here draws from a random stream of
its own, so a preset's probe frames are frame for frame those without joins (tests/keliu/test_guestwifi.py).

Assumptions (:class:`GuestWifi` holds the numbers; docs/METRICS.md "The simulator"):

* **Who joins**: visitors only (passers-by are gone before a login; staff are left out by the staff rules anyway).
  On a visit without an earlier join, a visitor joins with a probability that grows with the visit's length,
  ``join_short`` for a visit of the shortest dwell to ``join_long`` for the longest (log-linear in between: 10 % at
  12 min, 35 % at 2 h, about 22 % of the default scenario's visitors): a shopper logs in to stay a while. A visit
  too short to log in (under the login delay plus ``min_left_s``) makes no join.
* **When**: the login comes ``login_s`` after arriving (a minimum plus an exponential: looking for the SSID, the
  portal, the SMS code). A phone that joined on an earlier visit rejoins by itself on a later one (its OS
  remembers the network) with probability ``rejoin``, ``rejoin_s`` after arriving.
* **Address**: a phone that randomizes its probe MACs uses one per-network address for the guest SSID (Android 10+
  and iOS 14+: random, locally administered, kept for that network across visits); a phone that does not (the
  preset's ``fixed`` behaviour) associates from its one burned-in address, the one it probes from.
* **Frames heard**: before each association the phone sends ``directed`` directed probe requests for the guest
  SSID from that address (its probe information elements; as real phones do before joining a known network), then
  an authentication (not heard: the sensor reads probe and association requests only) and the association request
  (its own elements), on the AP's channel; each frame heard with the crowd's capture rate, at the phone's signal.
  A per-network address's sequence counter starts at random and counts every frame; a burned-in one continues
  from the phone's last probe heard, a few frames on.
* **Associated**: the phone stays associated until it leaves (no roaming, no sleep disassociation: a phone in
  power save still answers the AP, so hostapd's ``inactive_msec`` stays low). Its probe scanning continues as the
  crowd's model made it, on its rotating MACs: real associated phones scan less often and some scan from the
  associated address, which this model does not do (so the connected phones' probes are as visible as anyone's).
* **Station list**: polled every ``poll_s`` seconds (fixed phase); a station is in a poll from its association
  until ``max_inactive_s`` after it left (its last frame): ``keliu sensor stations`` keeps a listed station while
  it was heard within the last 60 s, and hostapd keeps it listed longer than that.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np

from keliu.testing.crowd import Air, Truth

KIND_PROBE, KIND_ASSOC = 0, 1  #: ``sensor.frames.KINDS``: probe request, association request


@dataclass(frozen=True)
class GuestWifi:
    share_dwell_s: tuple[float, float] = (720.0, 7200.0)  #: the dwells at which ``join_short``/``join_long`` hold
    join_short: float = 0.10
    join_long: float = 0.35
    login_s: tuple[float, float] = (60.0, 150.0)  #: minimum, mean of the exponential rest
    min_left_s: float = 120.0  #: a join needs this much of the visit left after the login
    rejoin: float = 0.9
    rejoin_s: tuple[float, float] = (10.0, 60.0)
    directed: tuple[int, int] = (1, 2)
    ssid: bytes = b"MIX-Mall-Guest"
    freq: int = 2437  #: the AP's channel (6)
    poll_s: float = 10.0
    max_inactive_s: float = 60.0
    #: while associated, a randomizing phone scans from its per-network address instead of its rotating MACs (as
    #: Android 8+ and iOS document: they randomize the scans made while *not* associated); off by default
    scans_associated: bool = False

    def join_probability(self, dwell_s: float) -> float:
        lo, hi = self.share_dwell_s
        x = (math.log(max(dwell_s, 1.0)) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return float(min(max(self.join_short + (self.join_long - self.join_short) * x, 0.0), 1.0))

    def join_at(self, rng: np.random.Generator, start: float, end: float, joined: bool) -> float | None:
        """When a visitor's phone associates on the visit [start, end] (None: not this visit): a phone that
        ``joined`` on an earlier visit rejoins by itself, else it joins with :meth:`join_probability` after a login;
        never with less than ``min_left_s`` of the visit left."""
        if joined and rng.random() < self.rejoin:
            at = start + float(rng.uniform(*self.rejoin_s))
        elif rng.random() < self.join_probability(end - start):
            at = start + self.login_s[0] + float(rng.exponential(self.login_s[1] - self.login_s[0]))
        else:
            return None
        return None if at > end - self.min_left_s else at


def network_address(rng: np.random.Generator) -> int:
    """A phone's per-network address: random, locally administered, unicast (Android 10+, iOS 14+)."""
    return (int(rng.integers(0, 1 << 48)) & ~(0x01 << 40)) | (0x02 << 40)


@dataclass(frozen=True)
class Session:
    """One association of a phone to the guest SSID (ground truth)."""

    pid: int
    mac: int  #: the phone's per-network address
    start: float  #: the association request
    end: float  #: the phone left (end of the visit)


@dataclass(frozen=True, eq=False)
class Joins:
    """What the joined phones add: the sessions (truth), the frames the sensor hears (``frames``: directed probes
    and association requests, ``kind`` set) and the AP's station list as polled (``poll_ts``, ``poll_mac``: one row
    per listed station per poll, in time order)."""

    sessions: tuple[Session, ...]
    frames: Air
    poll_ts: np.ndarray
    poll_mac: np.ndarray  # uint64
    #: with ``scans_associated``: the crowd's frames (indices) sent while associated, and their address and counter
    moved: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0, np.uint64),
                                                        np.zeros(0, np.int64))

    def heard(self, air: Air) -> Air:
        """The crowd's ``air`` (the frames :func:`joins` was given) as the sensor hears it with the joins: the
        association frames merged in, and the scans made while associated moved to the associated address."""
        idx, mac, seq = self.moved
        if len(idx):
            m, q = air.mac.copy(), air.seq.copy()
            m[idx], q[idx] = mac, seq
            air = replace(air, mac=m, seq=q)
        return air.merged(self.frames)

    def truth_dwell_s(self, lo: float, hi: float) -> np.ndarray:
        """The exact associated time of the sessions that began in [lo, hi) (seconds)."""
        return np.array([s.end - s.start for s in self.sessions if lo <= s.start < hi], np.float64)


def joins(air: Air, truth: Truth, seed: int, wifi: GuestWifi | None = None) -> Joins:
    """The visitors of ``truth`` who join the guest Wi-Fi, their association frames and the station list
    (deterministic by ``(preset, seed)``; ``air``, the crowd's frames, gives a non-randomizing phone's address)."""
    wifi = wifi or GuestWifi()
    sc = truth.scenario
    rng = np.random.default_rng([seed, 79, zlib.crc32(sc.preset.encode())])
    by_pid = np.argsort(air.pid, kind="stable")
    pid_sorted = air.pid[by_pid]
    rng_moved = np.random.default_rng([seed, 83, zlib.crc32(sc.preset.encode())])
    moved: list[tuple[np.ndarray, int, int]] = []
    sessions: list[Session] = []
    cols: dict[str, list[float | int]] = {k: [] for k in ("ts", "mac", "seq", "rssi", "fp", "kind", "pid")}
    for p in truth.people:
        if p.kind != "visitor":
            continue
        mac: int | None = None
        mine = by_pid[np.searchsorted(pid_sorted, p.pid):np.searchsorted(pid_sorted, p.pid, side="right")]
        fixed = p.phone.behaviour == "fixed"
        if fixed and not len(mine):
            continue  # never heard: its address is unknown and it adds nothing
        for start, end in p.visits:
            at = wifi.join_at(rng, start, end, mac is not None)
            if at is None:
                continue
            if mac is None:  # its burned-in address, or a per-network one
                mac = int(air.mac[mine[0]]) if fixed else network_address(rng)
            sessions.append(Session(p.pid, mac, at, end))
            if fixed:
                before = mine[air.ts[mine] < at]
                seq = int(air.seq[before[-1]]) + int(rng.integers(2, 14)) if len(before) else int(rng.integers(0, 4096))
            else:
                seq = int(rng.integers(0, 4096))
            nd = int(rng.integers(wifi.directed[0], wifi.directed[1] + 1))
            assoc_fp = zlib.crc32(b"crowd-assoc:" + p.phone.family.encode())
            times = [at - float(rng.uniform(0.05, 0.5)) + 0.02 * i for i in range(nd)] + [at]
            # directed probes, one authentication (not heard), the association request
            seqs = [seq + i for i in range(nd)] + [seq + nd + 1]
            if wifi.scans_associated and not fixed:
                moved.append((mine[(air.ts[mine] > at) & (air.ts[mine] < end)], mac, seq + nd + 2))
            for i, (t, s) in enumerate(zip(times, seqs)):
                rssi = round(p.rssi + float(rng.normal(0, 3.5)))
                if rng.random() >= sc.capture or rssi < -95:
                    continue
                assoc = i == nd
                cols["ts"].append(t)
                cols["mac"].append(mac)
                cols["seq"].append(s & 0xFFF)
                cols["rssi"].append(min(max(rssi, -99), -20))
                cols["fp"].append(assoc_fp if assoc else p.phone.fingerprint)
                cols["kind"].append(KIND_ASSOC if assoc else KIND_PROBE)
                cols["pid"].append(p.pid)
    order = np.argsort(np.array(cols["ts"], np.float64), kind="stable")
    n = len(order)
    frames = Air(np.array(cols["ts"], np.float64)[order], np.array(cols["mac"], np.uint64)[order],
                 np.array(cols["seq"], np.int64)[order], np.array(cols["rssi"], np.int64)[order],
                 np.full(n, wifi.freq, np.int64), np.array(cols["fp"], np.int64)[order], (wifi.ssid,) * n,
                 np.array(cols["pid"], np.int64)[order], np.array(cols["kind"], np.int8)[order])
    poll_ts, poll_mac = _polls(sessions, wifi)
    return Joins(tuple(sessions), frames, poll_ts, poll_mac, _moved(rng_moved, moved))


def _moved(rng: np.random.Generator, moved: list[tuple[np.ndarray, int, int]]) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """The scans made while associated, from the associated address: its counter goes on from the association
    (one per frame heard, a few more for the frames sent on channels the sensor does not hear)."""
    idx: list[np.ndarray] = []
    mac: list[np.ndarray] = []
    seq: list[np.ndarray] = []
    for i, m, s0 in moved:
        idx.append(i)
        mac.append(np.full(len(i), m, np.uint64))
        seq.append((s0 + np.cumsum(rng.integers(1, 4, len(i)))) & 0xFFF)
    if not idx:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.concatenate(idx), np.concatenate(mac), np.concatenate(seq).astype(np.int64)


def _polls(sessions: list[Session], wifi: GuestWifi) -> tuple[np.ndarray, np.ndarray]:
    ts: list[np.ndarray] = []
    mac: list[np.ndarray] = []
    for s in sessions:
        first = math.ceil(s.start / wifi.poll_s)
        last = math.floor((s.end + wifi.max_inactive_s) / wifi.poll_s)
        t = np.arange(first, last + 1, dtype=np.float64) * wifi.poll_s
        ts.append(t)
        mac.append(np.full(len(t), s.mac, np.uint64))
    if not ts:
        return np.zeros(0), np.zeros(0, np.uint64)
    t_all, m_all = np.concatenate(ts), np.concatenate(mac)
    order = np.argsort(t_all, kind="stable")
    return t_all[order], m_all[order]
