"""The fast 802.11 probe-request parser (pure: bytes in, :class:`Probe` records out).

Besides probe requests it reads association and reassociation requests (management subtypes 0 and 2): a phone
associating with any access point in range says so from its (per-network, stable) address, and the sensor counts
that frame like a probe. The record's ``kind`` tells them apart (:data:`KINDS`); the fixed fields before their
elements (capability and listen interval; for a reassociation also the current AP's address) are skipped, and their
elements (SSID first) are read and fingerprinted as a probe request's are.

It reads capture files from a buffer (classic pcap in either byte order with micro- or nanosecond timestamps, and
pcapng), then for every frame the radiotap header (present bitmasks including extended ones and namespaces, field
alignment, the FCS and bad-FCS flags, the dBm antenna signal, the channel frequency), the management header
(source address, sequence number) and the information elements (SSID first, then rates, HT/VHT/HE capabilities,
extended capabilities, vendor elements) into a fingerprint of the phone model.

Speed (the sensor must keep up with a busy channel on a router's CPU) comes from three choices:

* no per-field objects: ``struct.unpack_from`` and indexing on the file's own buffer;
* the radiotap layout depends only on the present words, so it is computed once per distinct bitmask and cached;
* the elements after the SSID are identical for every probe of one phone model on one channel, so their walk
  (validation and fingerprint) is cached by their bytes. Both caches are bounded.

The record is a ``NamedTuple`` rather than a frozen dataclass: it is just as immutable, and building one costs a
fifth of a frozen dataclass's ``__init__``, which matters at 300,000 frames per second.

The per-frame boundary: a frame that is neither a probe request nor an association or reassociation request is
skipped and counted (``not_probe``); a malformed or truncated frame
is counted as ``malformed`` and skipped; a frame whose FCS is wrong (or flagged bad by the driver) is counted as
``bad_fcs`` and skipped; a probe or association request whose capture timestamp lies outside the parser's window (before
``earliest``, by default 2000-01-01, or more than ``ahead_s`` past the injected clock, by default a day) is counted as
``bad_ts`` and skipped, so a crafted capture (a pcapng ``if_tsresol`` of 0 turns the raw counter into seconds) cannot
place a sighting in the year 10^11. Nothing raises out of :meth:`Parser.parse_frame`. A capture *file* whose
``if_tsresol`` option is malformed is refused as a whole with :class:`CaptureFormatError`.

A request whose radiotap signal is above ``MAX_SIGNAL_DBM`` is kept, its signal read as none and counted
(``bad_signal``): no receiver hears a probe that loud (a phone held against the antenna reads about 0 dBm), while
drivers do write such values now and then (the Galaxy S21 capture of ../shared/data holds one frame at +15 dBm, a
capture of the full Pintor dataset one at +26), and taken as the day's strongest signal it would make a passer-by a
visitor.
"""
from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np

from sensor.errors import SensorError
from sensor.pcap import LINKTYPE_RADIOTAP, pcap_header, record_chunks, records

log = logging.getLogger(__name__)

LINKTYPE_IEEE802_11 = 105

# radiotap fields of the default namespace: bit -> (alignment, size). Bits 29-31 switch namespaces / extend.
RADIOTAP_FIELDS: dict[int, tuple[int, int]] = {
    0: (8, 8), 1: (1, 1), 2: (1, 1), 3: (2, 4), 4: (1, 2), 5: (1, 1), 6: (1, 1), 7: (2, 2), 8: (2, 2), 9: (2, 2),
    10: (1, 1), 11: (1, 1), 12: (1, 1), 13: (1, 1), 14: (2, 2), 15: (2, 2), 16: (1, 1), 17: (1, 1), 18: (4, 8),
    19: (1, 3), 20: (4, 8), 21: (2, 12), 22: (8, 12), 23: (2, 12), 24: (2, 12), 25: (2, 6), 26: (1, 1), 27: (2, 4),
}
_BIT_FLAGS, _BIT_CHANNEL, _BIT_SIGNAL = 1, 3, 5
FLAG_FCS = 0x10
FLAG_BAD_FCS = 0x40

#: elements left out of the fingerprint: SSID (directed probes differ), DS parameter set (the current channel),
#: request element and padding-like elements; vendor elements count by OUI and type only (some carry per-MAC data).
_VOLATILE = frozenset({0, 3, 10})
#: element-id extensions (element 255) counted by their extension id only: 2 (FILS request parameters, 802.11ai),
#: whose last octet changes from probe to probe (a real Oppo Find X3 Neo: 88 fingerprints from one phone otherwise)
_VOLATILE_EXT = frozenset({2})
_CACHE_MAX = 4096

#: what a record is: a probe request, an association request, a reassociation request (``Probe.kind``)
KIND_PROBE, KIND_ASSOC, KIND_REASSOC = 0, 1, 2
KINDS = ("probe", "assoc", "reassoc")  #: their names (``Sighting.kind``, ``keliu sensor parse``)
#: the first frame-control octet (version 0, type management) of each kind -> (its kind, fixed-field bytes before
#: its elements): probe request none; association request capability and listen interval; reassociation request
#: those and the current AP's address
FRAME_KINDS = {0x40: (KIND_PROBE, 0), 0x00: (KIND_ASSOC, 4), 0x20: (KIND_REASSOC, 10)}

#: the default timestamp window: nothing before 2000-01-01 (a clock that was never set, a crafted file) ...
TS_EARLIEST = 946_684_800.0
#: ... nor more than a day past the injected clock; without a clock, nothing after 2100-01-01
TS_AHEAD_S = 86_400.0
TS_LATEST = 4_102_444_800.0


class Probe(NamedTuple):
    """One probe request (or association or reassociation request, by ``kind``). ``mac`` is the raw source address:
    it stays in memory and is never stored."""

    ts: float  #: epoch seconds
    mac: bytes  #: 6 bytes
    seq: int  #: 802.11 sequence number (0-4095)
    rssi: int | None  #: dBm antenna signal, None when the radiotap header has none
    freq: int | None  #: channel centre frequency, MHz
    ssid: bytes  #: b"" for a wildcard probe
    fingerprint: int  #: CRC-32 over the stable information elements (the phone model's signature)
    kind: int = KIND_PROBE  #: KIND_PROBE, KIND_ASSOC or KIND_REASSOC


@dataclass(slots=True)
class ParseStats:
    """Counters of the per-frame boundary (mutable on purpose: updated for every frame)."""

    frames: int = 0
    probes: int = 0  #: probe requests
    assocs: int = 0  #: association and reassociation requests
    not_probe: int = 0  #: other frames
    malformed: int = 0
    bad_fcs: int = 0
    bad_ts: int = 0  #: probe or association requests outside the timestamp window (not counted in ``probes``)
    bad_signal: int = 0  #: requests kept, their signal (above ``MAX_SIGNAL_DBM``) read as none

    @property
    def drops(self) -> int:
        return self.malformed + self.bad_fcs + self.bad_ts


class _Malformed(SensorError):
    """A frame is truncated or inconsistent (internal: caught at the per-frame boundary)."""


def radiotap_layout(hdr: bytes | memoryview, it_len: int) -> tuple[int, int, int, int, int]:
    """Offsets (relative to the radiotap start; -1 when absent) of flags, channel and dBm antenna signal, the
    number of present words, and how many header bytes the walked fields need. Only the first occurrence of a
    field counts (the combined signal, not a per-antenna one).

    Raises ``_Malformed`` when the header is inconsistent; stops at an unknown field (its size is unknown)."""
    words: list[int] = []
    pos = 4
    while True:
        if pos + 4 > it_len:
            raise _Malformed("radiotap present words run past the header")
        (word,) = struct.unpack_from("<I", hdr, pos)
        words.append(word)
        pos += 4
        if not word & 0x80000000:
            break
    offsets = {_BIT_FLAGS: -1, _BIT_CHANNEL: -1, _BIT_SIGNAL: -1}
    namespace = "radiotap"
    base_bit = 0
    for word in words:
        if namespace == "radiotap":
            for bit in range(29):
                if not word >> bit & 1:
                    continue
                field = RADIOTAP_FIELDS.get(base_bit + bit)
                if field is None:  # unknown field: its size is unknown, nothing after it can be located
                    return offsets[_BIT_FLAGS], offsets[_BIT_CHANNEL], offsets[_BIT_SIGNAL], len(words), pos
                align, size = field
                pos = (pos + align - 1) & ~(align - 1)
                if pos + size > it_len:
                    raise _Malformed("radiotap field runs past the header")
                if base_bit + bit in offsets and offsets[base_bit + bit] < 0:
                    offsets[base_bit + bit] = pos
                pos += size
        else:  # vendor namespace: a 6-byte header (OUI, sub-namespace, skip length), 2-aligned, then skipped
            pos = (pos + 1) & ~1
            if pos + 6 > it_len:
                raise _Malformed("radiotap vendor namespace runs past the header")
            (skip,) = struct.unpack_from("<H", hdr, pos + 4)
            pos += 6 + skip
            if pos > it_len:
                raise _Malformed("radiotap vendor data runs past the header")
        if word & 0x20000000:
            namespace, base_bit = "radiotap", 0
        elif word & 0x40000000:
            namespace, base_bit = "vendor", 0
        else:
            base_bit += 32
    return offsets[_BIT_FLAGS], offsets[_BIT_CHANNEL], offsets[_BIT_SIGNAL], len(words), pos


def _elements(buf: bytes | memoryview, start: int, end: int) -> int:
    """Walk the elements after the SSID; return the fingerprint. Raises ``_Malformed`` on a truncated element."""
    parts = bytearray()
    i = start
    while i < end:
        if i + 2 > end:
            raise _Malformed("element header truncated")
        eid = buf[i]
        length = buf[i + 1]
        nxt = i + 2 + length
        if nxt > end:
            raise _Malformed(f"element {eid} truncated")
        if eid == 221:  # vendor: OUI and type only
            parts += bytes((221, min(length, 4))) + bytes(buf[i + 2:i + 2 + min(length, 4)])
        elif eid == 255 and length and buf[i + 2] in _VOLATILE_EXT:  # extension id only
            parts += bytes((255, buf[i + 2]))
        elif eid not in _VOLATILE:
            parts += bytes(buf[i:nxt])
        i = nxt
    return zlib.crc32(parts)


class Located(NamedTuple):
    """Where one probe (or association) request's fields are (internal to the parser; offsets into the capture
    buffer)."""

    mac: int  #: 48-bit source address, first octet most significant
    seq: int
    rssi: int | None
    freq: int | None
    ssid_start: int
    ssid_end: int  #: also where the elements after the SSID start
    end: int  #: end of the elements (FCS excluded)
    kind: int = KIND_PROBE


NO_RSSI = -32768  #: column value of a missing signal field
MAX_SIGNAL_DBM = 10  #: the strongest signal taken as measured; above it, a driver's glitch read as none


@dataclass(frozen=True, eq=False)
class ProbeBatch:
    """Probe requests (and association requests) of one stretch of a capture as columns (numpy arrays), in
    capture order. ``kind`` (int8, :data:`KINDS`) is None when every frame is a probe request (the common case,
    which then costs nothing).

    The buffer is kept so that SSIDs and fingerprints are read only when asked for: the identity layer needs a
    fingerprint only for the first frame of each new MAC."""

    buf: bytes = field(repr=False)
    ts: np.ndarray  #: float64 epoch seconds
    mac: np.ndarray  #: uint64, 48-bit address, first octet most significant
    seq: np.ndarray  #: int64
    rssi: np.ndarray  #: int64 dBm, NO_RSSI when absent
    freq: np.ndarray  #: int64 MHz, 0 when absent
    ssid_start: np.ndarray
    ssid_end: np.ndarray
    end: np.ndarray
    tails: dict[bytes, int] = field(default_factory=dict, repr=False)
    #: for batches built from records (``from_probes``): fingerprints and SSIDs given, not read from ``buf``
    fps: np.ndarray | None = None
    ssids: tuple[bytes, ...] | None = None
    kind: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, i: int, j: int) -> ProbeBatch:
        """Frames ``i`` to ``j`` (same buffer)."""
        return ProbeBatch(self.buf, self.ts[i:j], self.mac[i:j], self.seq[i:j], self.rssi[i:j], self.freq[i:j],
                          self.ssid_start[i:j], self.ssid_end[i:j], self.end[i:j], self.tails,
                          None if self.fps is None else self.fps[i:j],
                          None if self.ssids is None else self.ssids[i:j],
                          None if self.kind is None else self.kind[i:j])

    def shifted(self, seconds: float) -> ProbeBatch:
        """The same frames ``seconds`` later (a replay moved to the present)."""
        if not seconds:
            return self
        return ProbeBatch(self.buf, self.ts + seconds, self.mac, self.seq, self.rssi, self.freq, self.ssid_start,
                          self.ssid_end, self.end, self.tails, self.fps, self.ssids, self.kind)

    @classmethod
    def from_probes(cls, probes: list[Probe]) -> ProbeBatch:
        z = np.zeros(len(probes), np.int64)
        kinds = np.array([p.kind for p in probes], np.int8)
        return cls(b"", np.array([p.ts for p in probes], np.float64),
                   np.array([int.from_bytes(p.mac, "big") for p in probes], np.uint64),
                   np.array([p.seq for p in probes], np.int64),
                   np.array([NO_RSSI if p.rssi is None else p.rssi for p in probes], np.int64),
                   np.array([p.freq or 0 for p in probes], np.int64), z, z, z,
                   fps=np.array([p.fingerprint for p in probes], np.int64), ssids=tuple(p.ssid for p in probes),
                   kind=kinds if kinds.any() else None)

    @cached_property
    def _bounds(self) -> tuple[list[int], list[int], list[int]]:
        """``ssid_start``, ``ssid_end`` and ``end`` as lists, made once when a frame's SSID or elements are first
        asked for: a numpy scalar costs more to read than the slice it bounds (the identity layer asks for one or
        a few frames of each new MAC)."""
        return self.ssid_start.tolist(), self.ssid_end.tolist(), self.end.tolist()

    @cached_property
    def directed(self) -> np.ndarray:
        """Per frame: a directed probe (a non-empty SSID)."""
        if self.ssids is not None:
            return np.fromiter(map(bool, self.ssids), bool, len(self.ssids))
        return self.ssid_end > self.ssid_start

    def fingerprint(self, i: int) -> int:
        if self.fps is not None:
            return int(self.fps[i])
        _start, ssid_end, end = self._bounds
        tail = self.buf[ssid_end[i]:end[i]]
        fp = self.tails.get(tail)
        if fp is None:
            fp = _elements(tail, 0, len(tail))  # validated by the parser already
            if len(self.tails) >= _CACHE_MAX:
                self.tails.clear()
            self.tails[tail] = fp
        return fp

    def ssid(self, i: int) -> bytes:
        if self.ssids is not None:
            return self.ssids[i]
        start, end, _end = self._bounds
        return self.buf[start[i]:end[i]]

    def kind_of(self, i: int) -> int:
        return KIND_PROBE if self.kind is None else int(self.kind[i])

    def probe(self, i: int) -> Probe:
        r = int(self.rssi[i])
        f = int(self.freq[i])
        return Probe(float(self.ts[i]), int(self.mac[i]).to_bytes(6, "big"), int(self.seq[i]),
                     None if r == NO_RSSI else r, f or None, self.ssid(i), self.fingerprint(i), self.kind_of(i))

    def probes(self) -> Iterator[Probe]:
        for i in range(len(self)):
            yield self.probe(i)

    @classmethod
    def empty(cls, buf: bytes = b"") -> ProbeBatch:
        z = np.zeros(0, np.int64)
        return cls(buf, np.zeros(0), np.zeros(0, np.uint64), z, z, z, z, z, z)


class Parser:
    """Parses frames and capture files, counting what it skips in :attr:`stats`.

    ``clock`` (injected by the composition root; None: no clock, the window ends at 2100-01-01), ``earliest`` and
    ``ahead_s`` make the timestamp window: probes outside ``[earliest, clock() + ahead_s]`` are counted as
    ``bad_ts`` and skipped."""

    def __init__(self, fcs: Literal["verify", "flag"] = "verify", *, clock: Callable[[], float] | None = None,
                 earliest: float = TS_EARLIEST, ahead_s: float = TS_AHEAD_S) -> None:
        #: ``verify`` recomputes the CRC of frames that carry an FCS; ``flag`` trusts the driver's bad-FCS flag
        #: only (for anonymized captures whose addresses were rewritten without fixing the FCS)
        self.verify_fcs = fcs == "verify"
        self.clock = clock
        self.earliest = earliest
        self.ahead_s = ahead_s
        self.stats = ParseStats()
        self._layouts: dict[bytes, tuple[int, int, int, int, int]] = {}
        self._tails: dict[bytes, int] = {}
        self._logged = 0

    def fresh(self) -> Parser:
        """A parser with the same settings and new counters (a throw-away pass over a file)."""
        return Parser("verify" if self.verify_fcs else "flag", clock=self.clock, earliest=self.earliest,
                      ahead_s=self.ahead_s)

    def window(self) -> tuple[float, float]:
        """The timestamps accepted now: ``(earliest, latest)``."""
        return self.earliest, TS_LATEST if self.clock is None else self.clock() + self.ahead_s

    def _accept(self, ts: float, window: tuple[float, float], loc: Located) -> Located | None:
        """A located frame as kept (its signal above ``MAX_SIGNAL_DBM`` read as none, and counted), or None (counted,
        and logged) when its timestamp is outside ``window``."""
        if window[0] <= ts <= window[1]:
            if loc.rssi is not None and loc.rssi > MAX_SIGNAL_DBM:
                self.stats.bad_signal += 1
                return loc._replace(rssi=None)
            return loc
        if loc.kind == KIND_PROBE:
            self.stats.probes -= 1
        else:
            self.stats.assocs -= 1
        self.stats.bad_ts += 1
        self._drop_log("timestamp out of window", f"{ts!r} not in [{window[0]:.0f}, {window[1]:.0f}]")
        return None

    # -- one frame (the reference implementation; the batch path below must agree with it) -------------------

    def parse_frame(self, buf: bytes, start: int, end: int, ts: float, linktype: int = LINKTYPE_RADIOTAP
                    ) -> Probe | None:
        """Parse the frame ``buf[start:end]`` captured at ``ts``. None when it is skipped (and counted)."""
        loc = self.locate(buf, start, end, linktype)
        if loc is None or (loc := self._accept(ts, self.window(), loc)) is None:
            return None
        tail = buf[loc.ssid_end:loc.end]
        fp = self._tails.get(tail)
        if fp is None:
            fp = _elements(tail, 0, len(tail))
            if len(self._tails) >= _CACHE_MAX:
                self._tails.clear()
            self._tails[tail] = fp
        return Probe(ts, loc.mac.to_bytes(6, "big"), loc.seq, loc.rssi, loc.freq, buf[loc.ssid_start:loc.ssid_end],
                     fp, loc.kind)

    def locate(self, buf: bytes, start: int, end: int, linktype: int = LINKTYPE_RADIOTAP) -> Located | None:
        """The per-frame boundary: the probe's (or association's) fields, or None when the frame is skipped (and
        counted)."""
        self.stats.frames += 1
        try:
            return self._locate(buf, start, end, linktype)
        except (_Malformed, struct.error, IndexError, ValueError) as exc:
            self.stats.malformed += 1
            self._drop_log("malformed", exc)
            return None

    def _drop_log(self, what: str, exc: object) -> None:
        # one line per frame would flood the log at thousands of frames per second: the first few, then every
        # 10,000th (the counters go into the health report).
        self._logged += 1
        if self._logged <= 5 or self._logged % 10_000 == 0:
            log.info("dropped frame (%s: %s); %d malformed, %d bad FCS, %d bad timestamp so far", what, exc,
                     self.stats.malformed, self.stats.bad_fcs, self.stats.bad_ts)

    def _locate(self, buf: bytes, start: int, end: int, linktype: int) -> Located | None:
        freq: int | None = None
        rssi: int | None = None
        if linktype == LINKTYPE_RADIOTAP:
            if end - start < 8 or buf[start] != 0:
                raise _Malformed("not a radiotap header")
            it_len = buf[start + 2] | buf[start + 3] << 8
            if start + it_len > end or it_len < 8:
                raise _Malformed("radiotap length past the frame")
            n = 1
            while buf[start + 3 + 4 * n] & 0x80:
                n += 1
                if 4 + 4 * n > it_len:
                    raise _Malformed("radiotap present words run past the header")
            key = buf[start + 4:start + 4 + 4 * n]
            layout = self._layouts.get(key)
            if layout is None:
                layout = radiotap_layout(buf[start:start + it_len], it_len)
                if not any(w & 0x40000000 for w in struct.unpack_from(f"<{n}I", buf, start + 4)):
                    # vendor namespaces make the layout depend on the data: never cached
                    if len(self._layouts) >= _CACHE_MAX:
                        self._layouts.clear()
                    self._layouts[key] = layout
            f_off, c_off, s_off, _n, need = layout
            if need > it_len:
                raise _Malformed("radiotap fields run past the header")
            if f_off >= 0:
                flags = buf[start + f_off]
                if flags & FLAG_FCS:
                    if end - start - it_len < 28:
                        raise _Malformed("frame shorter than header and FCS")
                    if flags & FLAG_BAD_FCS or self.verify_fcs and zlib.crc32(buf[start + it_len:end - 4]) != (
                            buf[end - 4] | buf[end - 3] << 8 | buf[end - 2] << 16 | buf[end - 1] << 24):
                        self.stats.bad_fcs += 1
                        self._drop_log("bad FCS", "checksum mismatch")
                        return None
                    end -= 4
            if c_off >= 0:
                freq = buf[start + c_off] | buf[start + c_off + 1] << 8
            if s_off >= 0:
                rssi = buf[start + s_off]
                if rssi > 127:
                    rssi -= 256
            h = start + it_len
        elif linktype == LINKTYPE_IEEE802_11:
            h = start
        else:
            raise _Malformed(f"unsupported link type {linktype}")
        if end - h < 24:
            raise _Malformed("management header truncated")
        known = FRAME_KINDS.get(buf[h])  # version 0, type management, subtype probe/association/reassociation
        if known is None:
            self.stats.not_probe += 1
            return None
        kind, fixed = known
        i = h + 24 + fixed
        if i + 2 > end or buf[i] != 0:
            raise _Malformed(f"{KINDS[kind]} request without an SSID element")
        tail_start = i + 2 + buf[i + 1]
        if tail_start > end:
            raise _Malformed("SSID element truncated")
        _walk(buf, tail_start, end)
        if kind == KIND_PROBE:
            self.stats.probes += 1
        else:
            self.stats.assocs += 1
        return Located(int.from_bytes(buf[h + 10:h + 16], "big"), (buf[h + 22] | buf[h + 23] << 8) >> 4, rssi,
                       freq, i + 2, tail_start, end, kind)

    # -- capture files -----------------------------------------------------------------------------------------

    def parse_capture(self, buf: bytes) -> Iterator[Probe]:
        """Every probe (and association) request of a pcap or pcapng file held in ``buf``, as records."""
        for batch in self.batches(buf):
            yield from batch.probes()

    def batches(self, buf: bytes, size: int = 16384) -> Iterator[ProbeBatch]:
        """The capture in ``buf`` as column batches of up to ``size`` frames each."""
        head = pcap_header(buf)
        if head is not None and head[2] == LINKTYPE_RADIOTAP:
            endian, scale, _lt = head
            for starts in record_chunks(buf, endian, size):
                yield self.parse_radiotap(buf, starts, endian, scale)
            return
        rows: list[tuple[float, Located]] = []
        window = self.window()
        for ts, s, e, linktype in records(buf):
            loc = self.locate(buf, s, e, linktype)
            if loc is not None and (loc := self._accept(ts, window, loc)) is not None:
                rows.append((ts, loc))
            if len(rows) >= size:
                yield _batch_of(buf, rows, self._tails)
                rows = []
        if rows:
            yield _batch_of(buf, rows, self._tails)

    def parse_radiotap(self, buf: bytes, starts: np.ndarray, endian: str, scale: float) -> ProbeBatch:
        """The hot path: the radiotap frames of classic-pcap records starting at ``starts``, parsed with numpy
        over the whole batch. Frames it does not handle (extended or vendor bitmaps, more elements than
        ``_MAX_ELEMENTS``) go through :meth:`locate`; the result is the same as :meth:`locate` for every frame."""
        a = np.frombuffer(buf, np.uint8)
        top = len(a) - 1
        S = starts

        def at(pos: np.ndarray) -> np.ndarray:
            out: np.ndarray = a[np.minimum(pos, top)].astype(np.int64)
            return out

        def gather(pos: np.ndarray, lo: int, hi: int) -> np.ndarray:
            """bytes ``pos+lo .. pos+hi`` of every frame as one (n, hi-lo) gather: one numpy call, not hi-lo"""
            out: np.ndarray = a[np.minimum(pos[:, None] + np.arange(lo, hi), top)]
            return out

        head = gather(S, -16, 8)  # the pcap record header and the radiotap header's first 8 bytes
        rec = np.ascontiguousarray(head[:, :16]).view(endian + "u4").astype(np.int64)
        E = S + rec[:, 2]
        ts = rec[:, 0] + rec[:, 1] * scale
        nframes = len(S)
        L = E - S
        hv = head[:, 16:].astype(np.int64)
        it_len = hv[:, 2] | hv[:, 3] << 8
        present = hv[:, 4] | hv[:, 5] << 8 | hv[:, 6] << 16 | hv[:, 7] << 24
        slow = (L >= 8) & (present >= 0x40000000)  # extended bitmaps or vendor namespace: per frame
        bad = (L < 8) | (hv[:, 0] != 0) | (it_len < 8) | (S + it_len > E)
        # layouts per distinct present word
        uniq, inv = np.unique(np.where(slow | bad, 0, present), return_inverse=True)
        lay = np.array([_single_layout(int(w)) for w in uniq], np.int64).reshape(-1, 4)[inv]
        f_off, c_off, s_off, need = lay[:, 0], lay[:, 1], lay[:, 2], lay[:, 3]
        bad |= need > it_len
        flags = np.where(f_off >= 0, at(S + np.maximum(f_off, 0)), 0)
        fcs = (flags & FLAG_FCS) != 0
        bad |= fcs & (L - it_len < 28)
        bad_fcs = fcs & ~bad & ~slow & ((flags & FLAG_BAD_FCS) != 0)
        E2 = E - 4 * fcs
        if self.verify_fcs:
            for k in np.flatnonzero(fcs & ~bad & ~slow & ~bad_fcs):
                s, e = int(S[k]) + int(it_len[k]), int(E[k])
                if zlib.crc32(buf[s:e - 4]) != int.from_bytes(buf[e - 4:e], "little"):
                    bad_fcs[k] = True
        h = S + it_len
        hdr = gather(h, 0, 26).astype(np.int64)  # management header and the SSID element's header
        bad |= E2 - h < 24
        ok = ~bad & ~slow & ~bad_fcs
        fc = hdr[:, 0]
        probe = ok & (fc == 0x40)
        assoc = ok & ((fc == 0x00) | (fc == 0x20))  # association and reassociation requests
        not_probe = ok & ~probe & ~assoc
        el = h + 24  # the SSID element
        eid, elen = hdr[:, 24], hdr[:, 25]
        if assoc.any():  # rare (a phone joining a network): their elements start after the fixed fields
            ai = np.flatnonzero(assoc)
            el[ai] += np.where(fc[ai] == 0x20, 10, 4)
            eid, elen = eid.copy(), elen.copy()
            eid[ai], elen[ai] = at(el[ai]), at(el[ai] + 1)
            probe |= assoc
        ssid_ok = (E2 - el >= 2) & (eid == 0)
        tail = el + 2 + elen
        ssid_ok &= tail <= E2
        bad |= probe & ~ssid_ok
        probe &= ssid_ok
        # walk the elements of every candidate at once
        pos = np.where(probe, tail, E2)
        for _ in range(_MAX_ELEMENTS):
            active = pos < E2
            if not active.any():
                break
            step = np.where(active, 2 + at(pos + 1), 0)
            # a truncated element header jumps past the end, which marks the frame malformed below
            pos = pos + np.where(active, np.where(pos + 2 <= E2, step, E2 - pos + 1), 0)
        else:
            more = probe & (pos < E2)
            slow |= more
            probe &= ~more
        bad |= probe & (pos != E2)
        probe &= pos == E2
        window = self.window()
        bad_ts = probe & ~((ts >= window[0]) & (ts <= window[1]))
        probe &= ~bad_ts
        # frames for the per-frame reference path
        rows: list[tuple[int, Located]] = []
        for k in np.flatnonzero(slow):
            loc = self.locate(buf, int(S[k]), int(E[k]), LINKTYPE_RADIOTAP)
            if loc is not None and (loc := self._accept(float(ts[k]), window, loc)) is not None:
                rows.append((int(k), loc))
        st = self.stats
        nbad = int(np.count_nonzero(bad & ~slow))
        st.frames += nframes - int(np.count_nonzero(slow))
        st.malformed += nbad
        st.bad_fcs += int(np.count_nonzero(bad_fcs & ~bad))
        st.not_probe += int(np.count_nonzero(not_probe & ~bad))
        n_assoc = int(np.count_nonzero(probe & assoc))
        st.probes += int(np.count_nonzero(probe)) - n_assoc
        st.assocs += n_assoc
        nbad_ts = int(np.count_nonzero(bad_ts))
        st.bad_ts += nbad_ts
        if nbad or bad_fcs.any() or nbad_ts:
            self._drop_log("malformed, bad FCS or timestamp out of window",
                           f"{nbad} malformed, {nbad_ts} out of window in a batch of {nframes}")
        idx = np.flatnonzero(probe)
        hi = hdr[idx]
        mac = np.zeros(len(idx), np.uint64)
        for octet in range(10, 16):
            mac = mac << np.uint64(8) | hi[:, octet].astype(np.uint64)
        sig = np.where(s_off[idx] >= 0, at(S[idx] + np.maximum(s_off[idx], 0)), NO_RSSI)
        sig = np.where((sig > 127) & (sig != NO_RSSI), sig - 256, sig)
        over = sig > MAX_SIGNAL_DBM
        if over.any():
            st.bad_signal += int(np.count_nonzero(over))
            sig = np.where(over, NO_RSSI, sig)
        co = c_off[idx]
        freq = np.where(co >= 0, at(S[idx] + np.maximum(co, 0)) | at(S[idx] + np.maximum(co, 0) + 1) << 8, 0)
        seq = (hi[:, 22] | hi[:, 23] << 8) >> 4
        kind = np.where(hi[:, 0] == 0x40, KIND_PROBE, np.where(hi[:, 0] == 0x00, KIND_ASSOC, KIND_REASSOC)).astype(
            np.int8) if n_assoc else np.zeros(len(idx), np.int8)
        cols = [ts[idx], mac, seq, sig, freq, el[idx] + 2, tail[idx], E2[idx], kind]
        if rows:
            extra = _columns(rows)
            order = np.argsort(np.concatenate([idx, np.array([r[0] for r in rows], np.int64)]), kind="stable")
            ts_x = ts[np.array([r[0] for r in rows], np.int64)]
            cols = [np.concatenate([c, x])[order] for c, x in zip(cols, [ts_x, *extra])]
        return ProbeBatch(buf, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7],
                          tails=self._tails, kind=cols[8] if cols[8].any() else None)


_MAX_ELEMENTS = 48


def _single_layout(word: int) -> tuple[int, int, int, int]:
    """Flags, channel and signal offsets and the bytes needed, for a single present word (0: none present)."""
    if word & 0xC0000000:
        return -1, -1, -1, 0
    hdr = struct.pack("<BBHI", 0, 0, 0xFFFF, word) + bytes(0xFFF7)
    f, c, s, _n, need = radiotap_layout(hdr, 0xFFFF)
    return f, c, s, need


def _walk(buf: bytes, start: int, end: int) -> None:
    i = start
    while i < end:
        if i + 2 > end:
            raise _Malformed("element header truncated")
        i += 2 + buf[i + 1]
        if i > end:
            raise _Malformed("element truncated")


def _columns(rows: list[tuple[int, Located]]) -> list[np.ndarray]:
    """mac, seq, rssi, freq, ssid_start, ssid_end, end and kind columns of located frames."""
    locs = [r[1] for r in rows]
    return [np.array([x.mac for x in locs], np.uint64), np.array([x.seq for x in locs], np.int64),
            np.array([NO_RSSI if x.rssi is None else x.rssi for x in locs], np.int64),
            np.array([x.freq or 0 for x in locs], np.int64), np.array([x.ssid_start for x in locs], np.int64),
            np.array([x.ssid_end for x in locs], np.int64), np.array([x.end for x in locs], np.int64),
            np.array([x.kind for x in locs], np.int8)]


def _batch_of(buf: bytes, rows: list[tuple[float, Located]], tails: dict[bytes, int]) -> ProbeBatch:
    ts = np.array([r[0] for r in rows], np.float64)
    c = _columns([(0, r[1]) for r in rows])
    return ProbeBatch(buf, ts, c[0], c[1], c[2], c[3], c[4], c[5], c[6], tails=tails,
                      kind=c[7] if c[7].any() else None)


CHANNEL_OF = {2412: 1, 2417: 2, 2422: 3, 2427: 4, 2432: 5, 2437: 6, 2442: 7, 2447: 8, 2452: 9, 2457: 10,
              2462: 11, 2467: 12, 2472: 13, 2484: 14}


def channel_number(freq: int) -> int:
    """802.11 channel number of a centre frequency in MHz (2.4, 5 and 6 GHz bands; 0 when unknown)."""
    if freq in CHANNEL_OF:
        return CHANNEL_OF[freq]
    if 5000 <= freq <= 5900:
        return (freq - 5000) // 5
    if 5955 <= freq <= 7115:
        return (freq - 5950) // 5
    return 0


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)
