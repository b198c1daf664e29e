"""Capture files (pcap and pcapng): the records inside a buffer, and writing a radiotap pcap that tshark reads.

Reading is pure (a buffer in, record positions and timestamps out); :func:`write` is the one edge here (a file).
The frames inside the records are :mod:`sensor.frames`' business. A truncated last record ends a read (a capture
still being written); a header that is not pcap or pcapng, or a malformed pcapng interface option, raises
:class:`sensor.errors.CaptureFormatError`.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from sensor.errors import CaptureFormatError

#: radiotap + 802.11: the link type of a monitor interface's frames
LINKTYPE_RADIOTAP = 127

def record_starts(buf: bytes, endian: str, first: int = 24) -> tuple[np.ndarray, int]:
    """Start offsets of the frame data of the complete classic-pcap records in ``buf`` from offset ``first``, and
    where the last complete record ends: the one loop that must be Python (each record's position depends on the
    previous one's length), kept as tight as it goes: bounds are checked once, after the walk."""
    unpack = struct.Struct(endian + "I").unpack_from
    last = len(buf) - 16
    off = first
    out: list[int] = []
    append = out.append
    while off <= last:
        append(off)
        off += 16 + unpack(buf, off + 8)[0]
    if out and off > len(buf):
        off = out.pop()  # a truncated last record (a capture still being written, or a chunk's edge)
    return np.array(out, np.int64) + 16, off


def record_chunks(buf: bytes, endian: str, size: int) -> Iterator[np.ndarray]:
    starts, _end = record_starts(buf, endian)
    for i in range(0, len(starts), size):
        yield starts[i:i + size]


PCAP_MAGICS = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}
PCAPNG_SHB = 0x0A0D0D0A


def pcap_header(buf: bytes) -> tuple[str, float, int] | None:
    """``(byte order, timestamp scale, link type)`` of a classic pcap buffer; None for anything else."""
    if len(buf) < 24:
        return None
    for endian in "<>":
        (magic,) = struct.unpack_from(endian + "I", buf, 0)
        if magic in PCAP_MAGICS:
            (linktype,) = struct.unpack_from(endian + "I", buf, 20)
            return endian, PCAP_MAGICS[magic], linktype & 0x0FFFFFFF
    return None


def records(buf: bytes) -> Iterator[tuple[float, int, int, int]]:
    """``(ts, start, end, linktype)`` of every frame in a pcap or pcapng buffer. A truncated last record ends the
    iteration (a capture still being written); a header that is not pcap/pcapng raises CaptureFormatError."""
    if len(buf) < 24:
        raise CaptureFormatError("file too short for a capture header")
    (magic,) = struct.unpack_from("<I", buf, 0)
    if magic == PCAPNG_SHB:
        yield from _pcapng(buf)
        return
    for endian in "<>":
        (magic,) = struct.unpack_from(endian + "I", buf, 0)
        if magic in PCAP_MAGICS:
            break
    else:
        raise CaptureFormatError(f"not a pcap or pcapng file (magic {buf[:4].hex()})")
    scale = PCAP_MAGICS[magic]
    (linktype,) = struct.unpack_from(endian + "I", buf, 20)
    linktype &= 0x0FFFFFFF
    hdr = struct.Struct(endian + "IIII")
    unpack = hdr.unpack_from
    off = 24
    n = len(buf)
    while off + 16 <= n:
        sec, frac, incl, _orig = unpack(buf, off)
        start = off + 16
        end = start + incl
        if end > n:
            return
        yield sec + frac * scale, start, end, linktype
        off = end


def _pcapng(buf: bytes) -> Iterator[tuple[float, int, int, int]]:
    n = len(buf)
    off = 0
    endian = "<"
    ifaces: list[tuple[int, float]] = []
    while off + 12 <= n:
        (btype,) = struct.unpack_from(endian + "I", buf, off)
        if btype == PCAPNG_SHB:
            (bom,) = struct.unpack_from("<I", buf, off + 8)
            endian = "<" if bom == 0x1A2B3C4D else ">"
            ifaces = []
        (blen,) = struct.unpack_from(endian + "I", buf, off + 4)
        if blen < 12 or off + blen > n:
            return
        body = off + 8
        if btype == 1:  # interface description: link type, and the timestamp resolution option
            (linktype,) = struct.unpack_from(endian + "H", buf, body)
            ifaces.append((linktype, _tsresol(buf, body + 8, off + blen - 4, endian, len(ifaces))))
        elif btype == 6:  # enhanced packet
            iface, hi, lo, caplen = struct.unpack_from(endian + "IIII", buf, body)
            if iface < len(ifaces) and body + 20 + caplen <= off + blen:
                linktype, res = ifaces[iface]
                yield ((hi << 32) | lo) * res, body + 20, body + 20 + caplen, linktype
        elif btype == 3 and ifaces:  # simple packet: no timestamp
            (orig,) = struct.unpack_from(endian + "I", buf, body)
            caplen = min(orig, blen - 16)
            yield 0.0, body + 4, body + 4 + caplen, ifaces[0][0]
        off += blen


def _tsresol(buf: bytes, pos: int, end: int, endian: str, iface: int) -> float:
    """Seconds per timestamp unit of one pcapng interface (``if_tsresol``; default microseconds).

    A malformed option (not one byte long, running past its block, or finer than libpcap accepts: 10^-19 or
    2^-63) refuses the whole capture: its timestamps cannot be trusted."""
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            break
        if pos + 4 + length > end:
            raise CaptureFormatError(f"pcapng interface {iface}: option {code} runs past its block")
        if code == 9:
            if length != 1:
                raise CaptureFormatError(f"pcapng interface {iface}: if_tsresol is {length} bytes long, not 1")
            v = buf[pos + 4]
            if v & 0x80 and v & 0x7F > 63 or not v & 0x80 and v > 19:
                raise CaptureFormatError(f"pcapng interface {iface}: if_tsresol {v:#04x} is out of range")
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += 4 + ((length + 3) & ~3)
    return 1e-6


_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RADIOTAP)


def write(path: str | Path, frames: Iterable[tuple[float, bytes]]) -> int:
    """Write ``(timestamp, radiotap frame)`` pairs as a classic pcap with microsecond timestamps, whole or not at
    all (a temporary file renamed into place). Returns the number of frames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(_PCAP_HEADER)
        for ts, data in frames:
            sec = int(ts)
            usec = min(999_999, round((ts - sec) * 1e6))
            fh.write(struct.pack("<IIII", sec, usec, len(data), len(data)))
            fh.write(data)
            n += 1
    tmp.replace(path)
    return n
