"""``sensor.rows`` (the parse command's text, whole columns at a time) against the row-at-a-time reference it
replaced: ``datetime.isoformat``, ``csv.DictWriter`` and ``json.dumps`` per probe request, byte for byte."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from click.testing import CliRunner

from sensor.cli import sensor
from sensor.frames import KINDS, Parser, Probe, ProbeBatch, channel_number, format_mac
from sensor.grouping import Identifier
from sensor.replay import iter_batches
from sensor.rows import FIELDS, RowWriter, header, local_times
from tests.sensor.sensorkit import tframe, write_records

T0 = 1_767_577_114.0  # 2026-01-05 01:38 UTC
SSIDS = [b"", b"Starbucks", b"a,b", b'say "hi"', b"two\nlines", b"cr\rhere", b"\xe5\xae\xa2\xe6\xb5\x81\xf0\x9f\x98\x80",
         b"\xff\xfe bad utf-8", b" lead space", b"tab\there", b"back\\slash",
         # SSIDs that differ only in trailing zero bytes, the longest valid SSID and a crafted longer one
         b"zero", b"zero\x00", b"zero\x00\x00", b"\x00", b"S" * 32, b"L" * 40 + b"\x00"]


def reference(batch: ProbeBatch, devices: np.ndarray, tz: ZoneInfo, fmt: str, show_mac: bool) -> str:
    """What ``keliu sensor parse`` printed before sensor.rows: one dict, one datetime, one writer call per probe."""
    out = io.StringIO()
    fields = list(FIELDS) + (["mac"] if show_mac else [])
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for i in range(len(batch)):
        p = batch.probe(i)
        row: dict[str, object] = {
            "ts": datetime.fromtimestamp(p.ts, tz).isoformat(timespec="microseconds"), "device": devices[i],
            "rssi": p.rssi, "freq": p.freq, "channel": channel_number(p.freq) if p.freq else None, "seq": p.seq,
            "ssid": p.ssid.decode("utf-8", "replace"), "randomized": bool(p.mac[0] & 0x02),
            "kind": KINDS[p.kind]}
        if show_mac:
            row["mac"] = format_mac(p.mac)
        if writer:
            writer.writerow(row)
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out.getvalue()


def ours(batches: list[tuple[ProbeBatch, np.ndarray]], tz: ZoneInfo, fmt: str, show_mac: bool) -> str:
    w = RowWriter(fmt, tz, show_mac)  # type: ignore[arg-type]
    return header(w.fmt, show_mac) + "".join(w.text(b, d) for b, d in batches)


def tprobes(n: int, t0: float = T0, step: float = 0.37) -> list[Probe]:
    freqs = [2412, 2437, 2484, 5180, 5825, 5955, None, 4000]
    return [Probe(t0 + i * step, bytes([0x02 if i % 3 else 0x00, 0xaa, 0xbb, 0xcc, i >> 8 & 0xff, i & 0xff]),
                  (i * 37) % 4096, None if i % 7 == 0 else -30 - i % 60, freqs[i % len(freqs)],
                  SSIDS[i % len(SSIDS)], i % 5) for i in range(n)]


def tdevices(n: int) -> np.ndarray:
    return np.array([None if i % 4 == 0 else f"{i * 7919:016x}" for i in range(n)], object)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("show_mac", [False, True])
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "Asia/Kathmandu", "America/St_Johns"])
def test_batches_print_what_the_row_reference_printed(fmt: str, show_mac: bool, zone: str) -> None:
    tz = ZoneInfo(zone)
    probes = tprobes(300)
    batches = [(ProbeBatch.from_probes(probes[a:a + 100]), tdevices(300)[a:a + 100]) for a in (0, 100, 200)]
    whole = ProbeBatch.from_probes(probes)
    assert ours(batches, tz, fmt, show_mac) == reference(whole, tdevices(300), tz, fmt, show_mac)


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe", "Europe/Berlin"])
def test_times_across_daylight_saving_changes(zone: str) -> None:
    tz = ZoneInfo(zone)
    # a probe every 7.3 s for a day and a half around each 2026 transition of the zone
    starts = [datetime(2026, 3, 8, tzinfo=tz), datetime(2026, 4, 4, tzinfo=tz), datetime(2026, 3, 28, tzinfo=tz),
              datetime(2026, 10, 3, tzinfo=tz), datetime(2026, 10, 24, tzinfo=tz), datetime(2026, 10, 31, tzinfo=tz)]
    for start in starts:
        ts = start.timestamp() + np.arange(0, 36 * 3600, 7.3)
        want = [datetime.fromtimestamp(t, tz).isoformat(timespec="microseconds") for t in ts.tolist()]
        assert local_times(ts, tz) == want
    offsets = {t[-6:] for s in starts for t in local_times(s.timestamp() + np.arange(0, 36 * 3600, 600.0), tz)}
    assert len(offsets) == 2  # both sides of a change were printed


def test_microseconds_round_half_to_even_like_fromtimestamp() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    base = 1_767_577_114
    ts = np.array([base + 0.9999995, base + 0.9999994, base + 0.0000005, base + 0.0000015, base + 0.4999995,
                   base + 59.9999999, 1_767_225_599.9999996, 946_684_800.0, 4_102_444_799.999999])
    assert local_times(ts, tz) == [datetime.fromtimestamp(t, tz).isoformat(timespec="microseconds")
                                   for t in ts.tolist()]
    rng = np.random.default_rng(7)
    many = base + rng.random(20_000) * 86_400 * 400
    assert local_times(many, tz) == [datetime.fromtimestamp(t, tz).isoformat(timespec="microseconds")
                                     for t in many.tolist()]


def test_an_empty_batch_prints_nothing() -> None:
    w = RowWriter("csv", ZoneInfo("UTC"), False)
    assert w.text(ProbeBatch.empty(), np.empty(0, object)) == ""
    assert local_times(np.zeros(0), ZoneInfo("UTC")) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_cli_prints_a_capture_as_the_reference_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       fmt: str) -> None:
    """From a pcap (SSIDs read from the capture buffer, not from records), through the command line."""
    var = tmp_path / "var"
    (var / "keys").mkdir(parents=True)
    (var / "keys" / "device_hmac").write_bytes(bytes(range(32)))
    monkeypatch.setenv("KELIU_VAR_DIR", str(var))
    recs = [(T0 + i * 0.731, tframe("basic" if i % 2 else "nosignal", f"{0x02 if i % 3 else 0:02x}:1b:2c:3d:{i >> 8:02x}:"
                                    f"{i & 0xff:02x}", i % 4096, freq=5180 if i % 5 == 0 else 2437,
                                    signal=-40 - i % 50, ssid=SSIDS[i % len(SSIDS)])) for i in range(400)]
    path = write_records(tmp_path / "c.pcap", recs)
    res = CliRunner().invoke(sensor, ["parse", str(path), "--format", fmt, "--show-mac"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    from keliu import config
    from sensor.cli import _policy

    cfg = config.load()
    tz = ZoneInfo(cfg.store(cfg.sensor.store).timezone)
    ident = Identifier(bytes(range(32)), _policy(cfg, tz.key, None))
    want = ""
    for i, b in enumerate(iter_batches(Parser(), path)):
        text = reference(b, ident.identify_batch(b), tz, fmt, True)
        want += text if i == 0 or fmt == "jsonl" else text.split("\n", 1)[1]
    assert want.count(":1b:2c:3d:") == 400  # every frame (SSIDs with line breaks make lines no count)
    assert res.stdout == want
