"""The parser against tshark (the oracle), the batch path against the per-frame reference, and fuzzing."""
from __future__ import annotations

import json
import struct
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.cli import sensor
from sensor.frames import Parser, ProbeBatch
from sensor.pcap import records
from tests.conftest import require_shared_data, require_tool
from tests.sensor.sensorkit import PCAP_HEADER, ssid_matches, tassoc, tframe, tshark_rows, write_records

T0 = 1_767_600_000.0
VARIANTS = [
    ("basic", {}), ("basic", {"fcs": True}), ("tsft", {}), ("tsft", {"fcs": True}), ("ext", {}),
    ("ext", {"fcs": True}), ("vendor", {}), ("nosignal", {}), ("basic", {"freq": 5180}), ("tsft", {"freq": 5745}),
    ("basic", {"ssid": b"Starbucks"}), ("ext", {"freq": 5200, "ssid": b"CMCC-WEB"}),
]


def variant_file(tmp_path: Path) -> Path:
    recs = []
    for i, (kind, kw) in enumerate(VARIANTS):
        mac = f"{0x02 if i % 2 else 0x00:02x}:1b:2c:3d:4e:{i:02x}"
        recs.append((T0 + i * 0.25, tframe(kind, mac, 100 + i, signal=-40 - i, **kw)))
    good = tframe("basic", "00:aa:bb:cc:dd:01", 7, fcs=True)
    recs.append((T0 + 10, good[:-1] + bytes([good[-1] ^ 0xFF])))  # FCS wrong: dropped
    bad_flag = bytearray(tframe("basic", "00:aa:bb:cc:dd:02", 8, fcs=True))
    bad_flag[8] |= 0x40  # the driver says the FCS is bad
    recs.append((T0 + 11, bytes(bad_flag)))
    recs.append((T0 + 12, tframe("basic", "00:aa:bb:cc:dd:03", 9, subtype=8)))  # a beacon: not a probe request
    return write_records(tmp_path / "variants.pcap", recs)


def parse_cli(path: Path, *args: str) -> list[dict[str, object]]:
    res = CliRunner().invoke(sensor, ["parse", str(path), "--show-mac", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def agree(rows: list[dict[str, object]], ref: list[tuple[float, str, int | None, int, str]]) -> None:
    assert len(rows) == len(ref)
    for ours, (ts, sa, sig, seq, ssid) in zip(rows, ref):
        assert abs(datetime.fromisoformat(ours["ts"]).timestamp() - ts) < 2e-6  # type: ignore[arg-type]
        assert (ours["mac"], ours["rssi"], ours["seq"]) == (sa, sig, seq)
        assert ssid_matches(str(ours["ssid"]), ssid), (ours["ssid"], ssid)


def test_radiotap_variants_agree_with_tshark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tshark = require_tool("tshark")
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    path = variant_file(tmp_path)
    ref = tshark_rows(tshark, path)
    assert len(ref) == len(VARIANTS)  # the oracle itself drops the two bad FCS and the beacon
    rows = parse_cli(path)
    agree(rows, ref)
    assert [r["freq"] for r in rows] == [kw.get("freq", 2437) for _k, kw in VARIANTS]
    assert rows[7]["rssi"] is None  # no signal field
    assert rows[8]["channel"] == 36
    assert not (tmp_path / "var").exists()  # parse stores nothing, not even a key


def test_pcapng_gives_the_same_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    editcap = require_tool("editcap")
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    path = variant_file(tmp_path)
    ng = tmp_path / "variants.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(path), str(ng)], check=True, capture_output=True)
    assert ng.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    strip = [{k: v for k, v in r.items() if k != "device"} for r in parse_cli(path)]
    assert [{k: v for k, v in r.items() if k != "device"} for r in parse_cli(ng)] == strip


def test_big_endian_and_nanosecond_pcap() -> None:
    frame = tframe("basic", "00:11:22:33:44:55", 42)
    be = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127) + struct.pack(">IIII", int(T0), 250_000,
                                                                                    len(frame), len(frame)) + frame
    ns = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 127) + struct.pack("<IIII", int(T0), 250_000_000,
                                                                                    len(frame), len(frame)) + frame
    for buf in (be, ns):
        (p,) = list(Parser().parse_capture(buf))
        assert (p.ts, p.mac.hex(), p.seq, p.rssi) == (T0 + 0.25, "001122334455", 42, -55)


REAL = [
    ("pintor-cagliari__B-ts-2021-Jun-03-h15-m34-s17-modePA-ch-11-th-60.pcap", "verify", 7036),
    ("baccichet__iPhone11-B_anonymized.pcap", "flag", 782),
    ("fryza__sc6-61_2023-10-17_anonymized.pcap", "verify", 26177),
]


@pytest.mark.parametrize(("name", "fcs", "count"), REAL)
def test_real_captures_agree_with_tshark(name: str, fcs: str, count: int, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    path = require_shared_data(name)
    tshark = require_tool("tshark")
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    rows = parse_cli(path, "--fcs", fcs)
    assert len(rows) == count
    if fcs == "flag":
        # the anonymizer rewrote the addresses without fixing the FCS: tshark flags every frame bad, so the
        # oracle here is tshark without FCS checking
        out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "wlan.sa",
                              "-e", "radiotap.dbm_antsignal", "-e", "wlan.seq", "-e", "wlan.ssid"],
                             capture_output=True, text=True, check=True).stdout
        ref = [(float(a), b, int(c.split(",")[0]), int(d), "" if e == "<MISSING>" else e)
               for a, b, c, d, e in (line.split("\t") for line in out.splitlines())]
    else:
        ref = tshark_rows(tshark, path)
    agree(rows, ref)


def test_verified_fcs_drops_the_anonymized_iphone_frames() -> None:
    path = require_shared_data("baccichet__iPhone11-B_anonymized.pcap")
    p = Parser("verify")
    assert list(p.parse_capture(path.read_bytes())) == []
    assert p.stats.bad_fcs == 782


# ---------------------------------------------------------------------------------------------------------------
# the column path equals the per-frame reference, and nothing escapes the per-frame boundary

def reference(buf: bytes) -> tuple[list[object], object]:
    p = Parser()
    out = [x for ts, s, e, lt in records(buf) if (x := p.parse_frame(buf, s, e, ts, lt)) is not None]
    return out, p.stats


def batched(buf: bytes) -> tuple[list[object], object]:
    p = Parser()
    return [x for b in p.batches(buf, size=7) for x in b.probes()], p.stats


SEEDS = [tframe(k, "02:00:00:00:00:01", 5, **kw) for k, kw in VARIANTS] + [
    tframe("basic", "00:00:00:00:00:02", 6, fcs=True), tassoc("02:00:00:00:00:03", 7, fcs=True),
    tassoc("02:00:00:00:00:04", 8, reassoc=True, rt="tsft")]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "grow", "byte"]))
        if op == "cut" and frame:
            del frame[draw(st.integers(0, len(frame) - 1)):]
        elif op == "grow":
            frame += draw(st.binary(max_size=8))
        elif frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] = draw(st.integers(0, 255)) if op == "byte" else frame[i] ^ (1 << draw(st.integers(0, 7)))
    return bytes(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(mutated(), st.binary(max_size=80)), st.sampled_from([int(T0), 0, 2**32 - 1])),
                min_size=1, max_size=12))
def test_fuzz_batch_equals_reference_and_nothing_escapes(timed: list[tuple[bytes, int]]) -> None:
    frames = [f for f, _t in timed]
    buf = PCAP_HEADER + b"".join(struct.pack("<IIII", t, 0, len(f), len(f)) + f for f, t in timed)
    ref, ref_stats = reference(buf)
    got, got_stats = batched(buf)
    assert got == ref
    assert got_stats == ref_stats
    s = got_stats
    assert s.frames == len(frames) == (  # type: ignore[attr-defined]
        s.probes + s.assocs + s.not_probe + s.malformed + s.bad_fcs + s.bad_ts)  # type: ignore[attr-defined]


def test_a_signal_no_receiver_reads_is_kept_as_none_and_counted(tmp_path: Path) -> None:
    # drivers write such values now and then (a real Galaxy S21 capture: +15 dBm); a phone against the antenna
    # reads about 0; the column path and the per-frame path ("vendor": a bitmap the column path hands over) agree
    recs = [(T0 + i, tframe(kind, f"02:1b:2c:3d:4e:{i:02x}", 10 + i, signal=sig))
            for i, (kind, sig) in enumerate([("basic", 15), ("basic", 2), ("vendor", 26), ("basic", -60),
                                             ("tsft", 127), ("basic", -128)])]
    buf = write_records(tmp_path / "loud.pcap", recs).read_bytes()
    ref, ref_stats = reference(buf)
    got, got_stats = batched(buf)
    assert got == ref
    assert got_stats == ref_stats
    assert [p.rssi for p in got] == [None, 2, None, -60, None, -128]  # type: ignore[attr-defined]
    assert (got_stats.probes, got_stats.bad_signal, got_stats.drops) == (6, 3, 0)  # type: ignore[attr-defined]
    res = CliRunner().invoke(sensor, ["parse", str(tmp_path / "loud.pcap"), "--format", "csv"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert [line.split(",")[2] for line in res.stdout.splitlines()[1:] if line.count(",") >= 8] == [
        "", "2", "", "-60", "", "-128"]
    assert "3 signals above +10 dBm read as none" in res.stderr


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_file_bytes(data: bytes) -> None:
    from sensor.errors import CaptureFormatError

    for buf in (data, PCAP_HEADER + data, b"\x0a\x0d\x0d\x0a" + data):
        p = Parser()
        try:
            list(p.parse_capture(buf))
        except CaptureFormatError:
            continue


def test_empty_batch_and_from_probes_round_trip() -> None:
    assert len(ProbeBatch.empty()) == 0
    probes, _ = reference(PCAP_HEADER + struct.pack("<IIII", 5, 0, len(SEEDS[0]), len(SEEDS[0])) + SEEDS[0])
    assert list(ProbeBatch.from_probes(probes).probes()) == probes  # type: ignore[arg-type]
