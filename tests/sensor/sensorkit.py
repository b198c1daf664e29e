"""Builders for the sensor tests: probe requests with radiotap variants (scapy), pcap files, the tshark oracle."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from keliu.testing.simulate import MODELS

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)
IES = MODELS["android12-reset"].ies  # rates, HT, extended caps, VHT, HE, vendor: tshark reads them cleanly


def tdot11(mac: str, seq: int, ssid: bytes = b"", ies: bytes = IES, fcs: bool = False, subtype: int = 4) -> bytes:
    """An 802.11 management frame (probe request by default) built by scapy; with ``fcs`` a correct FCS."""
    from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11FCS

    cls = Dot11FCS if fcs else Dot11
    hdr = cls(type=0, subtype=subtype, addr1="ff:ff:ff:ff:ff:ff", addr2=mac, addr3="ff:ff:ff:ff:ff:ff", SC=seq << 4)
    return bytes(hdr / Dot11Elt(ID=0, info=ssid) / ies)


def trt(kind: str, freq: int = 2437, signal: int = -55, fcs: bool = False) -> bytes:
    """A radiotap header of one of the variants the parser must handle."""
    from scapy.layers.dot11 import RadioTap

    chflags = 0x00A0 if freq < 3000 else 0x0140
    flags = "FCS" if fcs else 0
    if kind == "basic":
        return bytes(RadioTap(present="Flags+Channel+dBm_AntSignal", Flags=flags, ChannelFrequency=freq,
                              ChannelFlags=chflags, dBm_AntSignal=signal))
    if kind == "tsft":  # 8-byte aligned TSFT first, rate, antenna, RX flags
        return bytes(RadioTap(present="TSFT+Flags+Rate+Channel+dBm_AntSignal+Antenna+RXFlags", mac_timestamp=123456789,
                              Flags=flags, Rate=2, ChannelFrequency=freq, ChannelFlags=chflags, dBm_AntSignal=signal,
                              Antenna=1, RXFlags=0))
    if kind == "nosignal":
        return bytes(RadioTap(present="Flags+Channel", Flags=flags, ChannelFrequency=freq, ChannelFlags=chflags))
    f = 0x10 if fcs else 0
    if kind == "ext":  # three present words: radiotap namespace again twice, per-antenna signals (iwlwifi style)
        w0 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 14) | (1 << 29) | (1 << 31)
        w1 = (1 << 5) | (1 << 11) | (1 << 29) | (1 << 31)
        w2 = (1 << 5) | (1 << 11)
        body = struct.pack("<Q", 987654321) + struct.pack("<BBHHbxH", f, 12, freq, chflags, signal, 0)
        body += struct.pack("<bBbB", signal - 1, 0, signal + 1, 1)
        return struct.pack("<BBHIII", 0, 0, 16 + len(body), w0, w1, w2) + body
    if kind == "vendor":  # flags, channel, signal, then a vendor namespace with 4 bytes of skipped data
        w0 = (1 << 1) | (1 << 3) | (1 << 5) | (1 << 30) | (1 << 31)
        w1 = 1
        body = struct.pack("<BxHHbx", f, freq, chflags, signal) + bytes.fromhex("001122") + b"\x00" + struct.pack(
            "<H", 4) + b"\xde\xad\xbe\xef"
        return struct.pack("<BBHII", 0, 0, 12 + len(body), w0, w1) + body
    raise ValueError(kind)


def tframe(kind: str, mac: str, seq: int, *, freq: int = 2437, signal: int = -55, fcs: bool = False,
           ssid: bytes = b"", subtype: int = 4) -> bytes:
    return trt(kind, freq, signal, fcs) + tdot11(mac, seq, ssid, fcs=fcs, subtype=subtype)


AP = "00:0c:29:aa:bb:01"  # the access point a station associates with


def tassoc(mac: str, seq: int, ssid: bytes = "免费WiFi".encode(), *, reassoc: bool = False, fcs: bool = False,
           freq: int = 2437, signal: int = -55, ies: bytes = IES, rt: str = "basic") -> bytes:
    """An association (or reassociation) request from ``mac`` to :data:`AP`, built by scapy, with a radiotap
    header of variant ``rt``: capability and listen interval (and the current AP) before the elements."""
    from scapy.layers.dot11 import Dot11, Dot11AssoReq, Dot11Elt, Dot11FCS, Dot11ReassoReq

    cls = Dot11FCS if fcs else Dot11
    hdr = cls(type=0, subtype=2 if reassoc else 0, addr1=AP, addr2=mac, addr3=AP, SC=seq << 4)
    body = Dot11ReassoReq(cap=0x0421, listen_interval=10, current_AP=AP) if reassoc else Dot11AssoReq(
        cap=0x0421, listen_interval=10)
    return trt(rt, freq, signal, fcs) + bytes(hdr / body / Dot11Elt(ID=0, info=ssid) / ies)


def hand_rt(freq: int = 2437, signal: int = -55) -> bytes:
    """A radiotap header written out by hand: flags (none), channel (2 GHz OFDM), dBm antenna signal."""
    return struct.pack("<BBHI", 0, 0, 15, 0b101010) + struct.pack("<BxHHb", 0, freq, 0x00A0, signal)


def hand_mgmt(fc0: int, sa: str, seq: int, body: bytes, da: str = AP) -> bytes:
    """An 802.11 management frame written out by hand: frame control (``fc0``: version, type, subtype), duration,
    three addresses, sequence control, then ``body``."""
    def b(m: str) -> bytes:
        return bytes.fromhex(m.replace(":", ""))

    return struct.pack("<BBH", fc0, 0, 314) + b(da) + b(sa) + b(da) + struct.pack("<H", seq << 4) + body


def write_records(path: Path, records: list[tuple[float, bytes]], header: bytes = PCAP_HEADER) -> Path:
    with open(path, "wb") as fh:
        fh.write(header)
        for ts, data in records:
            sec = int(ts)
            fh.write(struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(data), len(data)))
            fh.write(data)
    return path


def tshark_rows(tshark: str, path: Path, subtypes: str = "4") -> list[tuple[float, str, int | None, int, str]]:
    """``(time, source address, first dBm signal, seq, ssid)`` of every probe request (or every management frame of
    ``subtypes``, e.g. ``"0,2,4"``) tshark accepts (valid FCS, not malformed): the reference the parser must agree
    with.

    ``wlan.check_checksum`` verifies the FCS where radiotap says there is one. Not ``wlan.check_fcs``: in tshark 4.0
    that preference means "assume packets have FCS", which cuts 4 bytes off captures without a flags field."""
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", (f"wlan.fc.type_subtype in {{{subtypes}}} && !(wlan.fcs.status == 0)"
                                          " && !(radiotap.flags.badfcs == 1) && !_ws.malformed"),
         "-T", "fields", "-e", "frame.time_epoch", "-e", "wlan.sa", "-e", "radiotap.dbm_antsignal", "-e", "wlan.seq",
         "-e", "wlan.ssid", "-o", "wlan.check_checksum:TRUE"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        ts, sa, sig, seq, ssid = (line.split("\t") + [""] * 5)[:5]
        first = sig.split(",")[0]
        rows.append((float(ts), sa, int(first) if first else None, int(seq), "" if ssid == "<MISSING>" else ssid))
    return rows


def ssid_matches(ours: str, theirs: str) -> bool:
    """tshark prints an SSID as text or as hex, depending on its content."""
    return theirs in (ours, ours.encode().hex(), ":".join(f"{b:02x}" for b in ours.encode()))


def tpcapng(path: Path, records: list[tuple[int, bytes]], tsresol: bytes | None = b"\x00") -> Path:
    """A little-endian pcapng: one section, one radiotap interface whose ``if_tsresol`` option carries ``tsresol``
    (None: no option, microseconds), and one enhanced packet block per ``(raw 64-bit timestamp, frame)``."""

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = struct.pack("<HH", 9, len(tsresol)) + tsresol + bytes(-len(tsresol) % 4)
    out += block(1, struct.pack("<HHI", 127, 0, 65535) + opts + struct.pack("<HH", 0, 0))
    for raw, frame in records:
        out += block(6, struct.pack("<IIIII", 0, raw >> 32, raw & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    path.write_bytes(out)
    return path
