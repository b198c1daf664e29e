"""Assigning device ids to probes, and grouping randomized MACs into estimated devices (pure, stateful).

Randomized MACs (locally administered bit set): since iOS 14 and Android 10 most phones probe with MACs that change
every few minutes or every scan, so one phone shows as many MACs. :class:`Identifier` groups them into estimated
devices. The default linker (``PrivacyPolicy.linker = "evidence"``, docs/METRICS.md "Linking rotating MACs") weighs
evidence, following Vanhoef et al. 2016, Martin et al. 2017, Matte et al. 2016 and Pintor et al. 2022: the new MACs
first heard within one time step (``link_step_s``) are scored against every group of the same fingerprint family
still in range by a log-likelihood ratio of "this phone rotated" against "a new phone arrived" (sequence-number
continuity, the phone's scan timing, signal continuity, directed SSIDs, the rotation prior for the MAC's age, and
how common the fingerprint is in the current crowd; the rate of new phones of a family that randomizes at every
scan is read from its scans, which need no link, times the new devices per scan of the families that rotate on a
timer), then assigned best pair first, each MAC and group once, while the ratio beats the threshold (a phone that
changes its MAC inside its scans, learnt from its links, may take several new MACs of one step).
``linker = "first_fit"`` keeps the earlier rule (the first group that fits) as the baseline. The group's id is the
keyed hash of its first MAC. State is kept only for active MACs and groups and expires
(``mac_ttl_s``), so memory follows the devices in range, not the frames seen; and all of it is dropped when the
period key rotates, so nothing links across periods. Devices in range are not a bound an attacker respects (a
transmitter sending probes from 200,000 random MACs in a quarter of an hour), so the MACs kept are also capped at
``max_macs``: past it, the least recently heard are forgotten and counted in :attr:`Identifier.evicted` (the
sensor's health report shows it). A forgotten MAC heard again is a new MAC; nothing else changes.
"""
from __future__ import annotations

import itertools
import logging
import math
import operator
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sensor.frames import NO_RSSI
from sensor.identity import PrivacyPolicy, Registry, device_id, member_key, period_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from sensor.frames import Probe, ProbeBatch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IdentityStats:
    """Counters of the current period (mutable)."""

    macs: int = 0  #: MACs that appeared (naive counting's device count)
    devices: int = 0  #: estimated devices that appeared
    linked_seq: int = 0  #: MACs joined to a group by sequence-number continuity
    linked_timing: int = 0  #: MACs joined by fingerprint, timing and signal
    linked_alt: int = 0  #: MACs joined as another element set's scan of a per-scan phone (``fingerprint``)
    linked_pnl: int = 0  #: ... by the preferred networks its scan probed for, which that phone probes for too
    opted_out: int = 0  #: frames dropped because their device opted out
    ignored: int = 0  #: frames of ignored MACs (the sensor's own radios)


@dataclass(slots=True, eq=False)
class _Group:
    device: str | None  #: None: an opted-out phone, every MAC grouped with it is dropped
    fingerprint: int
    current: _Mac | None = None  # the MAC most recently added
    macs: int = 1
    since: float = 0.0  #: first heard
    gap: float = 40.0  #: smoothed interval between the phone's scans (s)
    ssids: frozenset[bytes] = frozenset()  #: directed SSIDs heard first in its MACs
    #: links made within a burst (the new MAC's first frame within ``_BURST_S`` of the last one's last frame): a
    #: phone that changes its MAC inside a scan (iOS 16: every two frames)
    mid: int = 0
    long: int = 0  #: of its earlier MACs, those that lived 30 s or more (a phone that does not randomize per scan)
    #: for a phone that changes its MAC inside its scans: how far its new MACs' first signal strays from its
    #: smoothed signal (a smoothed variance, dB²; each channel of a scan is heard at another level), and the
    #: standard deviation the signal evidence uses for it (4.5 to 8 dB)
    spread: float = 20.25
    sd: float = 4.5
    #: every directed SSID its MACs sent (the phone's preferred networks, at most ``_PNL_MAX``): what a scan with
    #: another element set of this phone probes for too (:meth:`Identifier._score_pnl`)
    pnl: frozenset[bytes] = frozenset()
    #: its signal smoothed over all its MACs' bursts (``_LEVEL``): what a phone that changes its MAC inside its scans
    #: is compared with, whose current MAC is one burst on one channel
    level: float | None = None


@dataclass(slots=True, eq=False)
class _Mac:
    group: _Group | None  #: None: the MAC's sightings are dropped
    ts: float  #: last heard
    seq: int  #: last sequence number
    rssi: float | None  #: smoothed signal
    first: float = 0.0  #: first heard
    seq0: int = 0  #: first sequence number
    rssi0: float | None = None  #: first frame's signal
    ssid: bytes = b""  #: first frame's SSID
    counted: bool = False  #: its lifetime is in the fingerprint's statistics
    pending: bool = False  #: new, waiting for its time step's assignment
    fp: int = 0  #: the fingerprint of its first frame
    checks: int = 0  #: later runs whose fingerprint was compared with ``fp``
    pnl: set[bytes] | None = None  #: the directed SSIDs it sent while ``pending``


@dataclass(slots=True)
class _FpStats:
    """What the linker learns about one fingerprint (one phone model family) during a period."""

    ended: int = 0  #: MACs of it that went quiet
    long: int = 0  #: ... of which lived 30 s or more (not a per-scan randomizer)
    links: int = 0
    seq_links: int = 0  #: links where the sequence counter continued
    seq_rate: float = 0.5  #: smoothed counter advance per second across those links
    #: what the counts above say, kept current by :meth:`learnt` (the linker reads them for every new MAC):
    p_timed: float = 0.0  #: the share of its MACs that rotate on a timer (lived 30 s), not at every scan
    p_cont: float = 0.0  #: the share of its links that continued the sequence counter
    not_cont: float = 0.0  #: the chance of a link's counter landing anywhere: a restart, per value of 4096

    def __post_init__(self) -> None:
        self.learnt()

    def learnt(self) -> None:
        """Update the shares after a count changed."""
        self.p_timed = min(1.0, (self.long + 0.1) / (0.05 * self.ended + 1.0))
        self.p_cont = min(0.95, max(0.05, (self.seq_links + 1.0) / (self.links + 2.0)))
        self.not_cont = (1.0 - self.p_cont) / 4096.0


#: how long after a phone was last heard a MAC with another element set may still be its alternate set (s)
_ALT_WINDOW_S = 120.0
_ALT_MIN_DT = 1.0  #: ... and not within the scan it is sending (a scan uses one set)
#: the share of a per-scan phone's scans sent with another element set (the real captures: 3 % to 30 %)
_ALT_SCANS = 0.05
#: directed SSIDs kept per phone (``_Group.pnl``)
_PNL_MAX = 16
#: how common a directed SSID is (:meth:`Identifier._ssid_share`): the phones of the period that probed for it, out of
#: those that probed for any, with a prior of ``_SSID_P0`` weighed as ``_SSID_PRIOR`` phones (a home network's name is
#: one phone's; a carrier's or a chain's is many phones'). With the prior, one name alone cannot join two phones
#: (``_PNL_MIN``) until the period has heard enough phones to know it is rare
_SSID_P0 = 0.1
_SSID_PRIOR = 50.0
#: a scan joined to another phone by its names only where its rarest ``_PNL_USE`` names (their log shares; the names
#: of one phone are not independent) add up to ``_PNL_MIN``: one name probed for by under 5 % of the phones
_PNL_USE = 3
_PNL_MIN = 6.0
_BURST_S = 0.5  #: a burst: frames sent within this many seconds of each other
_BURST_TAU = 0.15  #: the mean gap between a phone's MACs inside one burst (s)
#: a phone's signal smoothed over its MACs' bursts, each burst weighed this much (``_Group.level``)
_LEVEL = 0.1
_HORIZONS = (15.0, 30.0, 60.0, 120.0, 240.0, 480.0)
_LOG12 = math.log(12.0)  # the crowd's signal spread (dB): a new phone's signal is N(-75, 12)
_SAME_TOP = math.log(0.85 / 4.5 + 0.01)  # the signal evidence's most for the same phone (the same signal, sd 4.5)


#: the pooled decision of a per-scan family (:func:`_pooled`): the groups scored down to this ratio (one below it adds
#: under 0.4 % of a new phone's odds); only for a family of this many groups in range or more (a handful of groups
#: is often one phone's fragments, its second element set or its weak channels, which pooling hands each other's
#: scans: the Baccichet scene); and the pooled ratio is held to a bar this much above ``perscan_threshold``
_FLOOR = -5.5
_POOL_MIN = 4
_POOL_MARGIN = 0.25
#: a per-scan family's new phones (:meth:`Identifier._family_rate`): its scans times the timed families' new devices
#: per scan, times ``_SCAN_ARRIVALS`` (calibrated on the simulator, like the thresholds: a per-scan phone sends more
#: scans per arrival than a timed one, and the timed families' own splits add new devices; docs/METRICS.md); weighed
#: half at ``_RATE_PRIOR`` timed scans in ten minutes (fewer: mostly the linker's own count)
_SCAN_ARRIVALS = 0.5
_RATE_PRIOR = 50.0
_ratio = operator.itemgetter(0)  #: the log-likelihood ratio of a scored ``(ratio, ...)`` tuple


def _pooled(scored: list[tuple[float, _Group]], weight: float, threshold: float) -> list[tuple[float, _Group]]:
    """The pairs of one new MAC whose ratio, raised by ``weight`` times the log of (the sum of every group's
    likelihood ratio / the best one's), beats ``threshold``. With ``weight`` 1 the best pair's ratio becomes "one of
    these groups continued" against "a new phone" (the count-preserving decision: with many phones of one family due
    to scan, each one alone is unlikely, their sum is not), and the others keep their ratio to the best one."""
    if len(scored) == 1:  # the sum is the best one's
        return scored if scored[0][0] > threshold else []
    top = max(map(_ratio, scored))
    shift = weight * math.log(sum(math.exp(s - top) for s, _g in scored))
    return [(s + shift, g) for s, g in scored if s + shift > threshold]


def _prune(table: dict[Any, list[_Group]], keep: Callable[[_Group], bool]) -> None:
    """Keep the groups of ``table`` (groups by family or by network name) that ``keep`` says are still in range;
    a key left with none is dropped (in place: ``_run`` and ``_grouped`` hold the tables)."""
    for key in list(table):
        kept = [g for g in table[key] if keep(g)]
        if kept:
            table[key] = kept
        else:
            del table[key]


def _names(batch: ProbeBatch, idx: np.ndarray, a: int, b: int) -> set[bytes]:
    """The directed SSIDs of the frames ``idx[a..b]`` (one run of a MAC; a scan probes for each of the phone's
    preferred networks in a frame of its own), at most ``_PNL_MAX``."""
    ssid = batch.ssid
    names = {ssid(i) for i in idx[a:b + 1].tolist()}
    names.discard(b"")
    return names if len(names) <= _PNL_MAX else set(sorted(names)[:_PNL_MAX])


def _seq_mean(stats: _FpStats, cur: _Mac, dt: float) -> float:
    """How far a continuing sequence counter is expected to have advanced ``dt`` seconds after ``cur``'s last
    frame: the model's learnt counter rate, or the MAC's own if faster (a phone probing hard)."""
    life = cur.ts - cur.first
    own = ((cur.seq - cur.seq0) & 0xFFF) / life if life >= 0.2 else 0.0
    return 8.0 + 1.5 * max(stats.seq_rate, own) * dt


@dataclass
class Identifier:
    """Assigns every probe an (estimated) device id, or None when its sighting must be dropped (opt-out,
    ignored MAC). Works on column batches (:class:`sensor.frames.ProbeBatch`).

    Frames from globally unique MACs are handled with numpy: one keyed hash per distinct MAC, cached. Frames from
    randomized MACs run through a short Python loop that keeps each MAC's last time, sequence number and signal,
    which the grouping of the next new MAC needs exactly as of that moment."""

    master: bytes = field(repr=False)
    policy: PrivacyPolicy = field(default_factory=PrivacyPolicy)
    registry: Registry = field(default_factory=Registry)
    #: 6-byte MACs never counted (the sensor's own radios)
    ignore: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        self.stats = IdentityStats()
        self._member_key = member_key(self.master)
        self._ignore = frozenset(int.from_bytes(m, "big") for m in self.ignore)
        self._period = -(2**62)
        self._period_start = float("inf")
        self._period_end = float("-inf")
        self._key = b""
        self._fixed: dict[int, list[Any]] = {}  # globally unique MAC -> [device id, last heard]
        self._macs: dict[int, _Mac] = {}  # randomized MAC -> state
        self._by_fp: dict[int, list[_Group]] = {}
        self._fp_stats: dict[int, _FpStats] = {}
        #: fingerprints one phone sends (seen on one MAC): a union-find forest, roots key ``_by_fp``
        self._fp_parent: dict[int, int] = {}
        self._active = 0
        self._pending: list[tuple[_Mac, int, int]] = []  # new MACs of the current time step, not yet assigned
        self._snap: dict[int, str | None] = {}  # device ids of the MACs a time step assigned (this batch)
        self._arrivals: list[float] = []  # when recent new devices were created (the arrival rate)
        #: ... of which were of a fingerprint family with no group in range (how often arrivals bring a new set)
        self._arrivals_unseen: list[float] = []
        #: scans and new devices of the last ten minutes, per family: ``(time, family, 0 a scan / 1 a new device)``,
        #: and their counts per family root (the per-scan families' arrival rate, :meth:`_family_rate`)
        self._events: deque[tuple[float, list[Any], int]] = deque()
        self._window: dict[int, list[Any]] = {}
        self._per_scan: tuple[float, float, float] = (float("-inf"), 0.0, 0.0)  # (when, new devices, scans) of timed
        #: directed SSIDs: the groups in range that probed for each, and how many groups of the period did (out of
        #: ``_named``, those that probed for any): how rare a shared name is (:meth:`_ssid_share`)
        self._by_ssid: dict[bytes, list[_Group]] = {}
        self._ssid_phones: dict[bytes, int] = {}
        self._named = 0
        #: the (new MAC, group) pairs of the current step that its names made (:meth:`_score_pnl`): a chain of its own
        self._pnl_pairs: set[tuple[int, int]] = set()
        self._latest = float("-inf")  # the latest frame time seen (what "unheard for mac_ttl_s" is measured from)
        #: MACs forgotten because ``max_macs`` was reached (cumulative, not per period)
        self.evicted = 0
        self._evictions = 0

    def identify_batch(self, batch: ProbeBatch) -> np.ndarray:
        """Device ids (an object array of ``str`` or None), one per probe of ``batch``."""
        n = len(batch)
        out = np.empty(n, object)
        if n == 0:
            return out
        days = np.floor((batch.ts + self.policy.utc_offset_s) / 86400).astype(np.int64)
        per = days if self.policy.mode == "strict" else days // self.policy.link_days
        cuts = [0, *(np.flatnonzero(per[1:] != per[:-1]) + 1).tolist(), n]
        for a, b in itertools.pairwise(cuts):
            first_ts = float(batch.ts[a])
            if int(per[a]) != self._period and not (
                    self._period_start - 3600 <= first_ts < self._period_end):  # small clock jitter: same period
                self._roll(int(per[a]))
            self._run(batch, a, b, out)
        return out

    def identify_probes(self, probes: list[Probe]) -> list[str | None]:
        """``identify_batch`` for :class:`sensor.frames.Probe` records (tests, small tools)."""
        from sensor.frames import ProbeBatch

        return list(self.identify_batch(ProbeBatch.from_probes(probes)))

    # -- one run of frames within a period ---------------------------------------------------------------------

    def _run(self, batch: ProbeBatch, a: int, b: int, out: np.ndarray) -> None:
        self._latest = max(self._latest, float(batch.ts[b - 1]))
        M = batch.mac[a:b]
        policy = self.policy
        if policy.group_randomized:
            grouped = np.ones(b - a, bool) if policy.group_all else (M >> np.uint64(41) & np.uint64(1)) == 1
        else:
            grouped = np.zeros(b - a, bool)
        fixed_idx = np.flatnonzero(~grouped)
        if len(fixed_idx):
            uniq, inv = np.unique(M[fixed_idx], return_inverse=True)
            get = self._fixed.get
            seen = float(batch.ts[a + fixed_idx[-1]])
            devs = []
            for m in uniq.tolist():
                entry = get(m)
                if entry is None:
                    entry = self._new_fixed(m)
                entry[1] = seen
                devs.append(entry[0])
            out[a + fixed_idx] = np.array(devs, object)[inv]
        rand_idx = np.flatnonzero(grouped)
        if len(rand_idx):
            out[a + rand_idx] = self._grouped(batch, a + rand_idx)
        dropped = out[a:b] == None
        if dropped.any():
            ign = np.isin(M[dropped], np.array(sorted(self._ignore), np.uint64)) if self._ignore else None
            n_ign = 0 if ign is None else int(ign.sum())
            self.stats.ignored += n_ign
            self.stats.opted_out += int(dropped.sum()) - n_ign
        self.expire(float(batch.ts[b - 1]), lazy=True)

    def _policy_id(self, mac: int) -> tuple[bool, str | None]:
        """``(decided, device)``: ignored, opted-out (None) or member (member id) MACs; else not decided."""
        if mac in self._ignore:
            return True, None
        if self.registry.members or self.registry.optouts:
            mid = device_id(self._member_key, mac.to_bytes(6, "big"))
            if mid in self.registry.optouts:
                return True, None
            if mid in self.registry.members:
                return True, mid
        return False, None

    def _new_fixed(self, mac: int) -> list[Any]:
        if len(self._macs) + len(self._fixed) >= self.policy.max_macs:
            self._evict()
        self.stats.macs += 1
        decided, dev = self._policy_id(mac)
        if not decided:
            dev = device_id(self._key, mac.to_bytes(6, "big"))
        if dev is not None:
            self.stats.devices += 1
        entry = self._fixed[mac] = [dev, 0.0]
        return entry

    def _grouped(self, batch: ProbeBatch, idx: np.ndarray) -> np.ndarray:
        """Device ids of the frames ``idx`` (randomized MACs), in order: the sequential part.

        Consecutive frames of one MAC (a phone's burst; about half of all frames) are one step: the MAC's state
        after the run is what the next new MAC's grouping looks at."""
        macs = self._macs
        get = macs.get
        ttl = self.policy.mac_ttl_s
        M = batch.mac[idx]
        starts = np.flatnonzero(np.concatenate(([True], M[1:] != M[:-1])))
        lasts = np.concatenate((starts[1:], [len(idx)])) - 1
        R = batch.rssi[idx]
        valid = R != NO_RSSI
        n_ok = np.add.reduceat(valid.astype(np.int64), starts)
        r_sum = np.add.reduceat(np.where(valid, R, 0), starts)
        r_mean = np.where(n_ok > 0, r_sum / np.maximum(n_ok, 1), np.nan)
        first = idx[starts]
        # runs holding an association request: the MAC is the phone's address for a network, not a rotating one
        stable = (np.maximum.reduceat(batch.kind[idx], starts) > 0).tolist() if batch.kind is not None and (
            batch.kind[idx].any()) else itertools.repeat(False)
        # runs holding a directed probe (what a new MAC's preferred networks are read from)
        directed = batch.directed[idx]
        named = np.logical_or.reduceat(directed, starts).tolist() if directed.any() else itertools.repeat(False)
        res: list[_Mac | str | None] = []  # a _Mac: a new MAC not assigned yet (its time step is open)
        self._snap.clear()
        append = res.append
        evidence = self.policy.linker == "evidence"
        step = self.policy.link_step_s
        for k, (gi, mac, ts, seq, r, ts_last, seq_last, rm, assoc, pnl) in enumerate(zip(
                first.tolist(), M[starts].tolist(), batch.ts[first].tolist(), batch.seq[first].tolist(),
                R[starts].tolist(), batch.ts[idx[lasts]].tolist(), batch.seq[idx[lasts]].tolist(), r_mean.tolist(),
                stable, named)):
            if self._pending and ts - self._pending[0][0].first > step:
                self._flush()
            st = get(mac)
            if st is None or ts - st.ts > ttl:
                st = self._new_random(batch, gi, mac, ts, seq,
                                      None if r == NO_RSSI else float(r) if math.isnan(rm) else rm, assoc)
                if pnl and st.pending:
                    st.pnl = _names(batch, idx, int(starts[k]), int(lasts[k]))
                if evidence and st.fp and ts_last != ts:  # a burst may mix element sets: compare its last frame
                    fp2 = batch.fingerprint(int(idx[lasts[k]]))
                    if fp2 != st.fp:
                        self._same_phone_fps(st.fp, fp2)
            elif evidence:
                if pnl:  # the MAC's preferred networks: its own while its step is open, else its phone's
                    names = _names(batch, idx, int(starts[k]), int(lasts[k]))
                    if st.pending:
                        st.pnl = names if st.pnl is None else st.pnl | names
                    elif (st.group is not None and not names <= st.group.pnl
                          and self._find(st.fp) == self._find(st.group.fingerprint)):
                        # (not a MAC joined to a phone of another family as its other set's scan, ``fingerprint``)
                        self._learn_pnl(st.group, names)
                if ts - st.ts > 2.0 and st.group is not None:
                    grp = st.group
                    grp.gap += (min(ts - st.ts, 600.0) - grp.gap) * 0.2
                    if st.fp:
                        self._event(ts, st.fp, 0)  # the MAC's next scan
                if st.checks < 4 and st.fp:
                    st.checks += 1
                    fp2 = batch.fingerprint(gi)
                    if fp2 != st.fp:
                        self._same_phone_fps(st.fp, fp2)
            st.ts = ts_last
            st.seq = seq_last
            g = st.group
            if not math.isnan(rm):
                # smoothed: one burst's fading (or frames heard from an adjacent channel) must not decide
                prev = st.rssi
                st.rssi = rm if prev is None else prev + (rm - prev) * 0.25
                if g is not None and g.current is st:  # (not another set's scan joined to the phone)
                    lv = g.level
                    g.level = rm if lv is None else lv + (rm - lv) * _LEVEL
            append(g.device if g is not None else st if st.pending else None)
        if self._pending:
            self._flush()
        snap = self._snap
        ids = [snap[id(x)] if isinstance(x, _Mac) else x for x in res]
        return np.array(ids, object)[np.repeat(np.arange(len(starts)), lasts - starts + 1)]

    def _new_random(self, batch: ProbeBatch, gi: int, mac: int, ts: float, seq: int, rssi: float | None,
                    assoc: bool = False) -> _Mac:
        """A new randomized MAC's state. Its group is decided by the policy (member, opt-out, ignored), else, for a
        MAC first heard associating (``assoc``), it is its own device at once (the address a phone keeps for one
        network, which the portal sees too: not a rotating probe address to be linked); else by the linker."""
        if len(self._macs) + len(self._fixed) >= self.policy.max_macs:
            self._evict()
        st = _Mac(None, ts, seq, rssi, ts, seq, rssi)
        self._macs[mac] = st
        self.stats.macs += 1
        decided, dev = self._policy_id(mac)
        if decided:
            if dev is not None:
                st.group = _Group(dev, 0, st)
                self.stats.devices += 1
            elif mac not in self._ignore:
                # opted out: the phone's other rotating MACs that group with this one are dropped as well
                fp = batch.fingerprint(gi)
                group = self._link(st, fp) if self.policy.linker != "evidence" else self._best_one(st, fp)
                if group is None:
                    group = _Group(None, fp, st, since=ts)
                    self._by_fp.setdefault(fp, []).append(group)
                group.device, group.current = None, st
                st.group = group
            return st
        fp = batch.fingerprint(gi)
        if assoc:
            st.group = _Group(device_id(self._key, mac.to_bytes(6, "big")), fp, st, since=ts)
            self.stats.devices += 1
            return st
        if self.policy.linker == "evidence":
            st.ssid = batch.ssid(gi)
            st.pending = True
            st.fp = fp
            self._pending.append((st, fp, mac))
            self._event(ts, fp, 0)  # a new MAC's first scan
            return st
        group = self._link(st, fp)
        if group is not None:
            group.current = st
            group.macs += 1
            st.group = group
            return st
        group = _Group(device_id(self._key, mac.to_bytes(6, "big")), fp, st, since=ts)
        self._by_fp.setdefault(fp, []).append(group)
        st.group = group
        self.stats.devices += 1
        return st

    def _link(self, st: _Mac, fp: int) -> _Group | None:
        """The group a new randomized MAC most likely belongs to, or None for a new device.

        Sequence continuity first: a counter that continues within ``seq_gap + seq_rate * dt`` (the phone kept
        counting on channels the sensor did not hear) beats any timing evidence. Otherwise the group whose MAC
        went quiet most recently, within ``link_window_s``, with a signal within ``link_rssi_db``."""
        cands = self._by_fp.get(fp)
        if not cands:
            return None
        policy = self.policy
        window, rssi_db = policy.link_window_s, policy.link_rssi_db
        seq_gap, seq_rate = policy.seq_gap, policy.seq_rate
        weak, weak_window = policy.weak_rssi, policy.weak_window_s
        ts, seq, rssi = st.ts, st.seq, st.rssi
        # a group quiet for longer than any window can no longer be linked to (its MAC may still speak)
        cutoff = ts - max(window, policy.long_window_s)
        best: _Group | None = None
        best_score = float("inf")
        by_seq = False
        stale = False
        long_best: _Group | None = None
        long_score = float("inf")
        for g in cands:
            cur = g.current
            assert cur is not None
            dt = ts - cur.ts
            if dt > window or dt < -2.0:
                stale = stale or cur.ts < cutoff
                if (dt <= policy.long_window_s and cur.ts - g.since >= policy.long_presence_s
                        and rssi is not None and cur.rssi is not None
                        and abs(rssi - cur.rssi) <= policy.long_rssi_db and dt < long_score):
                    long_best, long_score = g, dt
                continue
            dseq = (seq - cur.seq) & 0xFFF
            drssi = abs(rssi - cur.rssi) if rssi is not None and cur.rssi is not None else 0.0
            if 0 < dseq <= seq_gap + seq_rate * abs(dt) and dt < 60:
                score = dseq + drssi
                if not by_seq or score < best_score:
                    best, best_score, by_seq = g, score, True
                continue
            # within one burst (phones that use a new MAC per channel scanned) the signal varies more
            if by_seq or drssi > (rssi_db + 5.0 if -5.0 < dt < 5.0 else rssi_db):
                continue
            # two weak signals: passers-by, who are gone within a minute or two; a long silence there means
            # the phone left, not that it changed its MAC
            if dt > weak_window and rssi is not None and rssi < weak and cur.rssi is not None and cur.rssi < weak:
                continue
            score = 0.3 * abs(dt) / window + drssi / rssi_db  # the signal tells phones apart better than timing
            if score < best_score:
                best, best_score = g, score
        if stale:  # keep the candidate lists to the groups still in range
            self._by_fp[fp] = [g for g in cands if g.current is not None and g.current.ts >= cutoff]
        if best is None and long_best is not None:
            best = long_best
        if best is not None:
            if by_seq:
                self.stats.linked_seq += 1
            else:
                self.stats.linked_timing += 1
        return best

    # -- the evidence linker -----------------------------------------------------------------------------------

    def _find(self, fp: int) -> int:
        parent = self._fp_parent
        if fp not in parent:  # nearly always: a root
            return fp
        root = fp
        while root in parent:
            root = parent[root]
        while fp != root:  # path compression
            nxt = parent[fp]
            parent[fp] = root
            fp = nxt
        return root

    def _same_phone_fps(self, a: int, b: int) -> None:
        """One MAC sent fingerprints ``a`` and ``b`` (a phone whose elements vary between probes, e.g. a vendor
        element with a counter): from now on they are one model family for the linker."""
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        if len(self._fp_parent) >= 100_000:  # bounded, like every table here
            self._fp_parent.clear()
        self._fp_parent[rb] = ra
        moved = self._by_fp.pop(rb, None)
        if moved:
            self._by_fp.setdefault(ra, []).extend(moved)
        wb = self._window.pop(rb, None)
        if wb is not None:
            wa = self._window.setdefault(ra, [0, 0])
            wa[0] += wb[0]
            wa[1] += wb[1]
            wb[0] = wb[1] = 0
            wb.append(wa)  # the events that counted in wb are forgotten from wa (:meth:`_forget_events`)
        sb = self._fp_stats.pop(rb, None)
        if sb is not None:
            sa = self._fp_stats.setdefault(ra, _FpStats())
            sa.ended += sb.ended
            sa.long += sb.long
            sa.links += sb.links
            sa.seq_links += sb.seq_links
            sa.learnt()

    def _arrival_rate(self, now: float) -> float:
        """New phones per second over the last ten minutes (at least one per ten minutes); the scans and new devices
        per family older than that are forgotten too."""
        arr = self._arrivals
        cut = now - 600.0
        if arr and arr[0] < cut:
            k = 0
            while k < len(arr) and arr[k] < cut:
                k += 1
            del arr[:k]
        un = self._arrivals_unseen
        if un and un[0] < cut:
            k = 0
            while k < len(un) and un[k] < cut:
                k += 1
            del un[:k]
        ev = self._events
        if ev and ev[0][0] < cut:
            self._forget_events(cut)
        return max(len(arr), 1) / 600.0

    def _event(self, t: float, fp: int, kind: int) -> None:
        """A scan (``kind`` 0) or a new device (1) of family ``fp`` at ``t``. At most ``max_macs`` are kept (a
        flood of random MACs: the oldest are forgotten first, the window shortens)."""
        root = self._find(fp) if fp in self._fp_parent else fp
        w = self._window.get(root)
        if w is None:
            w = self._window[root] = [0, 0]
        w[kind] += 1
        ev = self._events
        ev.append((t, w, kind))
        if len(ev) > self.policy.max_macs:
            self._forget_events(float("-inf"), 1)

    def _forget_events(self, cut: float, n: int = -1) -> None:
        """Forget the events before ``cut`` (or the oldest ``n``): each from its family's counts (``[scans, new]``,
        or, for a family since joined to another, the counts it was added to: its list's third item)."""
        ev = self._events
        while ev and (ev[0][0] < cut or n > 0):
            n -= 1
            _t, w, kind = ev.popleft()
            while len(w) > 2:
                w = w[2]
            if w[kind] > 0:
                w[kind] -= 1

    def _family_rate(self, fp: int, ts: float, p_timed: float, fallback: float) -> float:
        """New phones of family ``fp`` (a root) per second. ``fallback``, the family's share of the new devices the
        linker made, holds where the linker links well; for a per-scan family (weight 1 - ``p_timed``) the linker's
        own errors feed it (a merge lowers the rate, which makes the next merge likelier), so instead: the family's
        scans in the last ten minutes (each from a new MAC: counted without linking) times the new devices per scan
        of the timed families (``p_timed`` 0.5 or more: long-lived MACs and counters, their links hold), times
        ``_SCAN_ARRIVALS``. With few timed scans (a store of iPhones) the weight falls back to ``fallback``."""
        when, arr, scans = self._per_scan
        if ts - when > 1.0:  # once a second: the sum runs over the families
            arr = scans = 0.0
            for root, (n_scans, n_new) in self._window.items():
                stats = self._fp_stats.get(root)
                if stats is not None and stats.p_timed >= 0.5:
                    scans += n_scans
                    arr += n_new
            self._per_scan = (ts, arr, scans)
        if scans <= 0.0 or p_timed >= 1.0:
            return fallback
        w = (1.0 - p_timed) * scans / (scans + _RATE_PRIOR)
        own = self._window.get(fp)
        est = max(1.0, (own[0] if own else 0) * arr / scans * _SCAN_ARRIVALS) / 600.0
        return (1.0 - w) * fallback + w * est

    def _candidates(self, st: _Mac, fp: int) -> list[tuple[float, _Group]]:
        """``(log-likelihood ratio, group)`` of every group the new MAC ``st`` could continue, against the
        hypothesis that a new phone arrived (docs/METRICS.md, "Linking rotating MACs"), whose ratio beats
        ``link_threshold`` (a link to any other is never made, so it is not kept). Groups of the MAC's own
        model family; when none of them will do and ``fingerprint`` evidence is on (opt-in), the per-scan phones of
        other families heard in the last two minutes (:meth:`_score_alt`)."""
        fp = self._find(fp)
        cands = self._by_fp.get(fp) or []
        ev = self.policy.evidence
        ts = st.first
        if "commonness" in ev:
            share = (len(cands) + 0.5) / (self._active + 10.0)
        else:
            share = 0.1
        rate = self._arrival_rate(ts)
        stats = self._fp_stats.get(fp)
        # the alternative: a phone of this model family arrived now
        # (a per-scan family's: from its scans, when the evidence weighs the family's commonness and its rotations)
        if "commonness" in ev and "rotation" in ev:
            log_new = math.log(self._family_rate(fp, ts, stats.p_timed if stats is not None else 0.0, rate * share))
        else:
            log_new = math.log(rate * share)
        # per-scan families with a crowd of groups: every group scored down to ``_FLOOR``, the decision pooled
        pool = 1.0 - stats.p_timed if stats is not None and "rotation" in ev and len(cands) >= _POOL_MIN else 0.0
        if not cands:
            out = []
        elif pool > 0.0:
            out = self._score(st, fp, cands, log_new, 0.0, _FLOOR)
            if out:
                out = _pooled(out, pool, self.policy.link_threshold + pool * _POOL_MARGIN)
        else:
            out = self._score(st, fp, cands, log_new, 0.0)
        if st.pnl and "ssid" in ev or not out and "fingerprint" in ev:
            # another element set of a phone in range? Against it: a new phone whose set is not in range (if this
            # one's is not): how often arrivals bring a set not in range, over the last ten minutes
            if not cands:
                unseen = (len(self._arrivals_unseen) + 1.0) / (len(self._arrivals) + 2.0)
                log_new = math.log(rate * unseen)
            # named by the phone's networks: weighed against its own family's groups too (the phone's first scan
            # with the other set may have probed for too few names, and made a chain of that set on its own); a
            # phone whose chain of this set can continue (scored above) is left to it, one whose chain went quiet
            # for too long is not
            named = self._score_pnl(st, fp, log_new, {g.device for _, g in out}) if st.pnl and "ssid" in ev else []
            if "fingerprint" in ev and not out and not named:
                named = self._score_alt(st, fp, cands, log_new)
            out += named
        return out

    def _score_alt(self, st: _Mac, fp: int, cands: list[_Group], log_new: float) -> list[tuple[float, _Group]]:
        """The log-likelihood ratios of ``st`` (family ``fp``) being a scan with another element set of a phone of
        another family in range, against a new phone (``log_new``), where they beat ``link_threshold``. Only phones
        that randomize at every scan (learnt per phone: three MACs or more, nearly all of which lived under 30 s):
        they send each scan from a new MAC, so their other set comes on a MAC of its own (the real captures: an
        iPhone 12 sends the iPhone 11's set in 2 % of its probes, an Oppo and an iPhone XR scan with a second set
        every few minutes); a phone that keeps its MAC for minutes sends its other set on that MAC, where the fingerprints are joined as one family. Heard in the last ``_ALT_WINDOW_S`` but not in the last
        ``_ALT_MIN_DT`` (another scan than the one it is sending); the scan comes at any time of the phone's stay: a
        rate of ``_ALT_SCANS`` of its scans, not the next step of its chain."""
        ts = st.first
        recent, late = ts - _ALT_WINDOW_S, ts - _ALT_MIN_DT
        seen = {id(g) for g in cands}
        out: list[tuple[float, _Group]] = []
        threshold = self.policy.link_threshold
        for root, groups in list(self._by_fp.items()):
            if root == fp:
                continue
            for g in groups:
                cur = g.current
                if cur is None or not recent <= cur.ts <= late or id(g) in seen:
                    continue
                if g.macs < 3 or 10 * g.long > g.macs or cur.ts - cur.first >= 30.0:
                    continue  # not (yet) seen to randomize at every scan
                seen.add(id(g))
                score = self._another_set(st, g, cur, log_new)
                if score > threshold:
                    out.append((score, g))
        return out

    def _another_set(self, st: _Mac, g: _Group, cur: _Mac, log_new: float) -> float:
        """The log-likelihood ratio of ``st`` being a scan with another element set of ``g``'s phone (its current
        MAC ``cur``) against a new phone (``log_new``): another set in ``_ALT_SCANS`` of the phone's scans, at any
        time of its stay, and (``rssi`` evidence) the phone's signal with a heavy tail against the crowd's
        N(-75, 12)."""
        dt = st.first - cur.ts
        stay = cur.ts - g.since + 60.0
        mu = g.gap if g.gap > 5.0 else 5.0  # noqa: FURB136
        score = math.log(_ALT_SCANS / mu * stay / (stay + dt)) - log_new
        rssi = st.rssi0
        if "rssi" in self.policy.evidence and rssi is not None and cur.rssi is not None:
            z = (rssi + 75.0) / 12.0
            d = (rssi - cur.rssi) / 4.5
            same = 0.85 / 4.5 * math.exp(-0.5 * d * d) + 0.01 * math.exp(-0.5 * (d * 4.5 / 15.0) ** 2)
            score += math.log(same) + 0.5 * z * z + _LOG12
        return score

    def _learn_pnl(self, g: _Group, names: set[bytes]) -> None:
        """``g``'s phone probed for ``names``: kept with it (at most ``_PNL_MAX``), and counted for how common each
        name is among the period's phones."""
        new = names - g.pnl
        if not new:
            return
        if not g.pnl:
            self._named += 1
        if len(self._ssid_phones) >= 100_000:  # bounded, like every table here
            self._ssid_phones.clear()
        phones = self._ssid_phones
        for name in new:
            phones[name] = phones.get(name, 0) + 1
            self._by_ssid.setdefault(name, []).append(g)
        g.pnl = g.pnl | new if len(g.pnl) + len(new) <= _PNL_MAX else frozenset(sorted(g.pnl | new)[:_PNL_MAX])

    def _ssid_share(self, name: bytes) -> float:
        """The chance that a phone probing for directed SSIDs probes for ``name``: the period's phones that did,
        out of those that probed for any, with a prior (``_SSID_P0``, weighed as ``_SSID_PRIOR`` phones)."""
        return (self._ssid_phones.get(name, 0) + _SSID_PRIOR * _SSID_P0) / (self._named + _SSID_PRIOR)

    def _score_pnl(self, st: _Mac, fp: int, log_new: float, mine: set[str | None]) -> list[tuple[float, _Group]]:
        """The log-likelihood ratios of ``st`` (family ``fp``) being a scan with another element set of a per-scan
        phone of another family in range that probes for the same preferred networks, against a new phone
        (``log_new``), where they beat ``link_threshold``; weighed beside its own family's groups, if any.

        A phone's scan probes for its preferred networks whichever element set it sends (the real Oppo Find X3 Neo
        of the Baccichet captures: five directed SSIDs in both of its sets, each scan of either from a new MAC).
        A new phone probes for a given name with the share of the period's phones that did (:meth:`_ssid_share`):
        a home network's name is one phone's, a carrier's many phones'. The names must all be the phone's, and
        rare enough to tell phones apart by themselves (``_PNL_MIN``); the rest of the ratio is
        :meth:`_score_alt`'s: heard in the last ``_ALT_WINDOW_S`` but not within the scan it is sending, another
        set in ``_ALT_SCANS`` of its scans, the same signal. A phone with a group of the MAC's own family that the
        MAC could continue (``mine``: their devices) is left to that group's chain."""
        names = st.pnl
        if not names:
            return []
        evidence = sorted(-math.log(self._ssid_share(name)) for name in names)[-_PNL_USE:]
        named = sum(evidence)
        if named < _PNL_MIN:
            return []
        ts = st.first
        recent, late = ts - _ALT_WINDOW_S, ts - _ALT_MIN_DT
        threshold = self.policy.link_threshold
        seen: set[int] = set()
        out: list[tuple[float, _Group]] = []
        for name in names:
            for g in self._by_ssid.get(name, ()):
                cur = g.current
                if (id(g) in seen or cur is None or not recent <= cur.ts <= late or not names <= g.pnl
                        or g.device in mine):
                    continue
                seen.add(id(g))
                root = self._find(g.fingerprint)
                if root == fp or 10 * g.long > g.macs or cur.ts - cur.first >= 30.0:
                    continue  # its own family (scored already), or a phone that keeps a MAC for minutes
                if g.macs < 3:  # not yet seen to randomize at every scan: is its model?
                    stats = self._fp_stats.get(root)
                    if stats is not None and stats.p_timed >= 0.5:
                        continue  # no: it sends its other set on the MAC it keeps
                score = self._another_set(st, g, cur, log_new) + named
                if score > threshold:
                    out.append((score, g))
                    self._pnl_pairs.add((id(st), id(g)))
        return out

    def _score(self, st: _Mac, fp: int, cands: list[_Group], log_new: float,
               penalty: float, floor: float | None = None) -> list[tuple[float, _Group]]:
        """The log-likelihood ratios of ``st`` continuing each of ``cands`` (one fingerprint family ``fp``)
        against a new phone, whose log-rate is ``log_new`` (the terms: docs/METRICS.md), of the groups whose ratio
        beats ``link_threshold`` (or ``floor``, for a pooled decision): no link is made to the others."""
        policy = self.policy
        ev = policy.evidence
        ts, rssi, seq = st.first, st.rssi0, st.seq0
        stats = self._fp_stats.get(fp)
        if stats is None:
            stats = self._fp_stats[fp] = _FpStats()
        # is this fingerprint a per-scan randomizer? (its MACs never live 30 s)
        ended = ts - 60.0
        counted = stats.ended
        for g in cands:
            cur = g.current
            if cur is not None and not cur.counted and cur.ts < ended:
                cur.counted = True
                stats.ended += 1
                stats.long += cur.ts - cur.first >= 30.0
        if stats.ended != counted:
            stats.learnt()
        use_rot, use_timing = "rotation" in ev, "timing" in ev
        use_rssi = "rssi" in ev and rssi is not None
        use_seq, use_ssid = "seq" in ev, "ssid" in ev and bool(st.ssid)
        p_timed = stats.p_timed if use_rot else 1.0
        p_cont, not_cont, seq_rate = stats.p_cont, stats.not_cont, stats.seq_rate
        cutoff = ts - policy.link_max_gap_s
        threshold = policy.link_threshold
        # per-scan randomizers produce a new MAC every scan: their links are held to their own threshold
        base = penalty - log_new + (threshold - policy.perscan_threshold) * (1.0 - p_timed)
        if floor is not None:
            threshold = floor
        rmin, span = policy.rotate_min_s, policy.rotate_max_s - policy.rotate_min_s
        rmax = policy.rotate_max_s
        not_rot = 1.0 - p_timed
        min_dt = -policy.link_step_s
        burst_s, burst_tau = _BURST_S, _BURST_TAU
        exp, log = math.exp, math.log
        # the counter term when the counter did not continue (the common case: no exp, no log in the loop)
        seq_new = log(not_cont * 4096.0) if use_seq else 0.0
        # the signal term's best (the same signal, the narrowest spread): a pair that cannot beat the threshold
        # with it is dropped before its signal is weighed
        rssi_new = rssi_top = 0.0
        if use_rssi:
            z = (rssi + 75.0) / 12.0  # type: ignore[operator]
            rssi_new = 0.5 * z * z + _LOG12
            rssi_top = _SAME_TOP + rssi_new
        # a horizon: the best any group quiet for dt could score (its scan interval = dt, the same signal, the
        # counter right behind) falls with dt; groups quiet longer than where it drops below the threshold are
        # skipped unscored (in a crowd most are passers-by long gone)
        top = base + (rssi_top if use_rssi else 0.0) + (2.5 if use_ssid else 0.0)
        horizon = policy.link_max_gap_s
        for h in _HORIZONS if len(cands) > 16 else ():  # a short list costs less to score than to bound
            b = top + log(0.7 / (math.e * h) + 0.00075 * exp(-h / 400.0) if use_timing else 1.0 / 120.0)
            if use_seq:
                b += log((p_cont / (8.0 + 1.5 * seq_rate * h) + not_cont) * 4096.0)
            if b < threshold:
                horizon = h
                break
        # the bound below adds the terms in another order than the score: a margin far above the rounding
        reject = threshold - 1e-9
        out: list[tuple[float, _Group]] = []
        stale = False
        for g in cands:
            cur = g.current
            assert cur is not None
            cts = cur.ts
            if cts < cutoff:
                stale = True
                continue
            dt = ts - cts
            if dt < min_dt or dt > horizon or cur is st:
                continue
            raw = dt
            if dt < 0.5:  # noqa: PLR1730 (a call costs more in this loop)
                dt = 0.5
            age = cts - cur.first
            # the phone rotated its MAC in the silence (a MAC that lived 60 s did not, unless per-scan)
            if use_rot:
                p = (age + dt - rmin) / span if g.macs > 1 else (age + dt) / rmax  # first MAC: born unseen
                p = 0.02 if p < 0.02 else 1.0 if p > 1.0 else p  # noqa: FURB136
                p_rot = not_rot + p_timed * p
            else:
                p_rot = 0.5
            # ... and scanned now: the phone's own scan interval, or a screen-off silence; and is still here
            if use_timing:
                mu = g.gap if g.gap > 5.0 else 5.0  # noqa: FURB136 (no call in this loop)
                stay = cts - g.since + 60.0
                like = (0.7 / mu * exp(-dt / mu) + 0.00075 * exp(-dt / 400.0)) * stay / (stay + dt)
                if raw < burst_s and g.mid > 1 and 2 * g.mid >= g.macs:
                    # ... or it is inside the scan it was just sending, for a phone seen changing its MAC inside
                    # its scans in most of its links (the share of its links that were so; one or a few such links
                    # happen by chance in a crowd of phones of one model)
                    like += g.mid / g.macs / burst_tau * exp(-max(0.0, raw) / burst_tau)
            else:
                like = 1.0 / 120.0
            score = log(p_rot * like + 1e-12) + base
            # a continuing counter advanced by the frames sent meanwhile (on channels not heard, too): about
            # exponential around the model's learnt counter rate (or the MAC's own, if faster); a new phone's
            # counter is uniform on 4096
            seq_term = seq_new
            if use_seq:
                dseq = (seq - cur.seq) & 0xFFF
                if 0 < dseq <= 2048:
                    own = ((cur.seq - cur.seq0) & 0xFFF) / age if age >= 0.2 else 0.0
                    mean = 8.0 + 1.5 * (own if own > seq_rate else seq_rate) * dt  # noqa: FURB136
                    seq_term = log((p_cont * exp(-dseq / mean) / mean + not_cont) * 4096.0)
            ssid_term = 0.0
            if use_ssid:
                if st.ssid in g.ssids:
                    ssid_term = 2.5
                elif g.ssids:
                    ssid_term = -1.0
            # a phone that changes its MAC inside its scans: its level over many bursts, not its last MAC's one burst
            # on one channel (the real iPhone 11: -78 to -46 dBm from channel to channel)
            crssi = g.level if g.level is not None and g.mid > 1 and 2 * g.mid >= g.macs else cur.rssi
            if use_rssi and crssi is not None:
                if score + rssi_top + seq_term + ssid_term <= reject:
                    continue
                # same phone: its smoothed signal give or take fading (a heavy tail: a body, a turn);
                # a new phone: any signal of the crowd
                sd = g.sd + 0.01 * dt if dt < 550.0 else 10.0
                diff = rssi - crssi  # type: ignore[operator]
                d = diff / sd
                same = 0.85 / sd * exp(-0.5 * d * d) + 0.01 * exp(-0.5 * (diff / 15.0) ** 2)
                score += log(same) + rssi_new
            if use_seq:
                score += seq_term
            if ssid_term:
                score += ssid_term
            if score > threshold:
                out.append((score, g))
        if stale:
            self._by_fp[fp] = [g for g in cands if g.current is not None and g.current.ts >= cutoff]
        return out

    def _attach(self, st: _Mac, fp: int, g: _Group) -> None:
        cur = g.current
        fp = self._find(fp)
        if fp != self._find(g.fingerprint):
            # a scan with the phone's other element set: the phone's device, but not the next link of its chain,
            # which its next scan with its own set continues from its own last MAC (taking the chain over handed
            # the phone's next scans to whatever the wrong phone's MAC did next)
            if (id(st), id(g)) in self._pnl_pairs:
                # named by the phone's own preferred networks (:meth:`_score_pnl`): the first MAC of a chain of
                # its own, the phone's device, which the phone's next scans with that set continue
                sib = _Group(g.device, fp, st, since=st.first, ssids=frozenset({st.ssid}) if st.ssid else
                             frozenset(), pnl=g.pnl)
                self._by_fp.setdefault(fp, []).append(sib)
                for name in g.pnl:
                    self._by_ssid.setdefault(name, []).append(sib)
                st.group = sib
                self.stats.linked_pnl += 1
                return
            st.group = g
            self.stats.linked_alt += 1
            return
        stats = self._fp_stats.get(fp)
        if stats is None:
            stats = self._fp_stats[fp] = _FpStats()
        stats.links += 1
        if (cur is not None and cur.rssi is not None and st.rssi0 is not None and st.first - cur.ts < _BURST_S
                and g.mid > 1 and 2 * g.mid >= g.macs):
            # learnt only from the links inside a scan of a phone seen changing its MAC there (most of its links):
            # a chance link of two phones would teach the wrong phone a wider signal
            g.spread += ((st.rssi0 - cur.rssi) ** 2 - g.spread) * 0.1
            g.sd = min(8.0, max(4.5, math.sqrt(g.spread)))
        if cur is not None:
            if st.first - cur.ts < _BURST_S:
                g.mid += 1
            if cur.ts - cur.first >= 30.0:
                g.long += 1
            dseq = (st.seq0 - cur.seq) & 0xFFF
            if 0 < dseq <= 3.0 * _seq_mean(stats, cur, max(0.0, st.first - cur.ts)):
                stats.seq_links += 1
                dt = st.first - cur.ts
                if dt >= 5.0:
                    stats.seq_rate += (min(dseq / dt, 20.0) - stats.seq_rate) * 0.1
                self.stats.linked_seq += 1
            else:
                self.stats.linked_timing += 1
        stats.learnt()
        if st.rssi0 is not None:
            g.level = st.rssi0 if g.level is None else g.level + (st.rssi0 - g.level) * _LEVEL
        g.current = st
        g.macs += 1
        if st.ssid:
            g.ssids = g.ssids | {st.ssid}
        if st.pnl and not st.pnl <= g.pnl:
            self._learn_pnl(g, st.pnl)
        st.group = g

    def _best_one(self, st: _Mac, fp: int) -> _Group | None:
        """The group of one new MAC decided alone (an opted-out phone's MAC), or None."""
        self._pnl_pairs.clear()
        self._active = sum(len(v) for v in self._by_fp.values())
        root = self._find(fp)
        cands = [c for c in self._candidates(st, fp)
                 if self._find(c[1].fingerprint) == root]  # its own set's phones: the device is dropped
        if not cands:
            return None
        g = max(cands, key=_ratio)[1]
        self._attach(st, fp, g)
        return g

    def _flush(self) -> None:
        """Assign the new MACs of one time step: every (new MAC, group) pair scored, then pairs taken best first,
        each MAC and each group at most once, while the score beats a new phone (``link_threshold``); what is
        left is scored again against the groups as just extended, in time order, else it is a new phone."""
        pending, self._pending = self._pending, []
        self._pnl_pairs.clear()
        self._active = sum(map(len, self._by_fp.values()))  # groups in range: the crowd
        if len(pending) == 1:  # the usual step: one new MAC, linked to its best group or a new phone
            st, fp, mac = pending[0]
            best = max(self._candidates(st, fp), key=_ratio, default=None)
            if best is None:
                self._new_group(st, fp, mac)
            else:
                self._attach(st, fp, best[1])
            st.pending = False
            self._snap[id(st)] = None if st.group is None else st.group.device
            return
        pairs: list[tuple[float, int, int, _Group]] = []
        for i, (st, fp, _mac) in enumerate(pending):
            for score, g in self._candidates(st, fp):
                pairs.append((score, i, id(g), g))
        done: set[int] = set()
        used: set[int] = set()
        deferred: set[int] = set()
        if pairs:
            pairs.sort(key=_ratio, reverse=True)  # stable: equal ratios keep their order
            for _score, i, gid, g in pairs:
                if i in done or i in deferred:
                    continue
                if gid in used:
                    if g.mid > 1 and 2 * g.mid >= g.macs:
                        # a phone that changes its MAC inside its scans (iOS 16: every two frames) sends several
                        # new MACs in one step: decided in the second pass against the group as extended
                        deferred.add(i)
                    continue
                st, fp, _mac = pending[i]
                self._attach(st, fp, g)
                done.add(i)
                if g.current is st:  # another set's scan leaves the chain to the phone's own next MAC
                    used.add(gid)
        for i, (st, fp, mac) in enumerate(pending):
            if i in done:
                continue
            # second pass, in time order, against the state the first pass left: a phone that used two MACs in
            # one scan (one per channel) continues the group its first one joined, if the evidence says so
            best = max(self._candidates(st, fp), key=_ratio, default=None)
            if best is None:
                self._new_group(st, fp, mac)
            else:
                self._attach(st, fp, best[1])
        for st, _fp, _mac in pending:
            st.pending = False
            self._snap[id(st)] = None if st.group is None else st.group.device

    def _new_group(self, st: _Mac, fp: int, mac: int) -> None:
        """``st`` is a new phone: the first MAC of a new group, whose device id is the keyed hash of that MAC."""
        fp = self._find(fp)
        group = _Group(device_id(self._key, mac.to_bytes(6, "big")), fp, st, since=st.first,
                       ssids=frozenset({st.ssid}) if st.ssid else frozenset(), level=st.rssi0)
        same = self._by_fp.setdefault(fp, [])
        if not same:
            self._arrivals_unseen.append(st.first)
        same.append(group)
        st.group = group
        if st.pnl:
            self._learn_pnl(group, st.pnl)
        self.stats.devices += 1
        self._arrivals.append(st.first)
        self._event(st.first, fp, 1)

    # -- periods and memory ------------------------------------------------------------------------------------

    def _evict(self) -> None:
        """Make room under ``max_macs``: forget what the TTL allows, then the least recently heard MACs down to 90%
        of the cap (so the sort is paid once per tenth of the cap of new MACs, not once per MAC), and the groups
        whose current MAC was forgotten. The tables are changed in place: ``_run`` and ``_grouped`` hold them."""
        cap = self.policy.max_macs
        cutoff = self._latest - self.policy.mac_ttl_s
        heard = sorted([(st.ts, 0, m) for m, st in self._macs.items()] + [(e[1], 1, m) for m, e in self._fixed.items()])
        expired = sum(1 for h in heard if h[0] < cutoff)
        forced = max(0, len(heard) - expired - cap * 9 // 10)
        for _ts, kind, m in heard[:expired + forced]:
            del (self._macs if kind == 0 else self._fixed)[m]
        live = {id(st) for st in self._macs.values()}
        _prune(self._by_fp, lambda g: id(g.current) in live)
        _prune(self._by_ssid, lambda g: id(g.current) in live)
        if forced:
            self.evicted += forced
            self._evictions += 1
            if self._evictions <= 5 or self._evictions % 1000 == 0:  # a flood must not flood the log too
                log.warning("more than %d MACs in range: forgot the %d least recently heard (%d so far)", cap,
                            forced, self.evicted)

    def _roll(self, period: int) -> None:
        self._period = period
        self._period_start, self._period_end = self.policy.period_bounds(period)
        self._key = period_key(self.master, period)
        # a new key: nothing may link across periods, so every MAC and group starts afresh
        self._fixed.clear()
        self._macs.clear()
        self._by_fp.clear()
        self._fp_stats.clear()
        self._fp_parent.clear()
        self._arrivals.clear()
        self._arrivals_unseen.clear()
        self._events.clear()
        self._window.clear()
        self._per_scan = (float("-inf"), 0.0, 0.0)
        self._by_ssid.clear()
        self._ssid_phones.clear()
        self._named = 0
        self.stats = IdentityStats()

    def expire(self, now: float, lazy: bool = False) -> None:
        """Forget MACs and groups unheard for ``mac_ttl_s``: memory follows the devices in range. (Small tables
        are not swept when ``lazy``: sweeping them costs more than they weigh.)"""
        cutoff = now - self.policy.mac_ttl_s
        if len(self._macs) > 1024 or not lazy:
            self._macs = {m: st for m, st in self._macs.items() if st.ts >= cutoff}
        if len(self._fixed) > 1024 or not lazy:
            self._fixed = {m: e for m, e in self._fixed.items() if e[1] >= cutoff}
        _prune(self._by_fp, lambda g: g.current is not None and g.current.ts >= cutoff)
        _prune(self._by_ssid, lambda g: g.current is not None and g.current.ts >= cutoff)

    def set_registry(self, registry: Registry) -> None:
        """New member and opt-out ids from the portal. Known MACs are re-checked (their state is dropped)."""
        if registry != self.registry:
            self.registry = registry
            self._fixed.clear()
            self._macs.clear()
            self._by_fp.clear()
            self._by_ssid.clear()

    @property
    def active_macs(self) -> int:
        return len(self._macs) + len(self._fixed)

    @property
    def active_groups(self) -> int:
        return sum(len(v) for v in self._by_fp.values())
