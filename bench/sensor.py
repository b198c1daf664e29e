"""Sensor benchmark: parse + identify probe requests from a 1,000,000-frame pcap, against tshark and scapy.

    .venv/bin/python bench/sensor.py [--frames N] [--scapy-frames N]

1. Generates (once; kept in the temp dir) a pcap of simulated store days (``keliu.testing.simulate``): radiotap, a mix of
   phone models, half of them rotating their MAC.
2. keliu: a fresh process reads the file in chunks, parses every frame (``sensor.frames``) and assigns every probe
   its device id (``sensor.identity``, randomized-MAC grouping included); frames/s and the process's peak RSS.
   Also reported: the same plus building the sightings (sid hashing), which delivery needs.
3. tshark extracting the same fields (time, source address, signal, sequence number, SSID) from the same file.
4. scapy dissecting probe requests the way open-source probe counters do (``haslayer(Dot11ProbeReq)``, ``addr2``,
   ``dBm_AntSignal``, ``SC``, the SSID element), on the first ``--scapy-frames`` frames of the same file.

The last output line is one JSON object: keliu_fps, tshark_fps, scapy_fps, vs_tshark, vs_scapy, peak_mb, ...
Targets: keliu >= 300,000 frames/s on one core, >= 10x tshark, >= 500x scapy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_capture(path: Path, frames: int) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from keliu.testing.simulate import DEMO, simulate, write_pcap

    def gen():  # type: ignore[no-untyped-def]
        n, day = 0, 0
        while True:
            day_frames, _ = simulate(replace(DEMO, start_date=DEMO.start_date + timedelta(days=day)), day)
            for f in day_frames:
                yield f
                n += 1
                if n >= frames:
                    return
            day += 1

    write_pcap(path, gen())


def child_keliu(path: str, sightings: bool) -> None:
    """Runs in a fresh process: parse + identify (+ sightings) the whole file; prints one JSON line."""
    import resource

    from sensor.frames import Parser
    from sensor.grouping import Identifier
    from sensor.identity import sid_key
    from sensor.replay import iter_batches
    from sensor.sightings import sightings as make

    master = os.urandom(32)
    parser, ident, key = Parser(), Identifier(master), sid_key(master)
    n = 0
    t = time.perf_counter()
    cpu = time.process_time()
    for batch in iter_batches(parser, path):
        devices = ident.identify_batch(batch)
        if sightings:
            make(batch, devices, "bench", "sensor-1", key)
        n += len(batch)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": parser.stats.frames, "probes": n, "seconds": wall, "cpu_seconds": cpu,
                      "fps": parser.stats.frames / wall, "peak_mb": peak, "devices": ident.stats.devices}))


def run_child(path: Path, sightings: bool) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(path)] + (["--sightings"] if sightings else []),
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def tshark(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    proc = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "wlan.sa",
                           "-e", "radiotap.dbm_antsignal", "-e", "wlan.seq", "-e", "wlan.ssid"],
                          capture_output=True, check=True)
    return time.perf_counter() - t, proc.stdout.count(b"\n")


def scapy(path: Path, frames: int) -> tuple[float, int]:
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.layers.dot11 import Dot11Elt, Dot11ProbeReq
    from scapy.utils import PcapReader

    n = 0
    rows = []
    t = time.perf_counter()
    with PcapReader(str(path)) as reader:
        for pkt in reader:
            if pkt.haslayer(Dot11ProbeReq):
                rows.append((float(pkt.time), pkt.addr2, getattr(pkt, "dBm_AntSignal", None), pkt.SC >> 4,
                             pkt[Dot11Elt].info))
            n += 1
            if n >= frames:
                break
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--scapy-frames", type=int, default=10_000)
    ap.add_argument("--child")
    ap.add_argument("--sightings", action="store_true")
    args = ap.parse_args()
    if args.child:
        child_keliu(args.child, args.sightings)
        return
    cache = Path(tempfile.gettempdir()) / "keliu-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"sensor-{args.frames}.pcap"
    if not path.exists():
        t = time.perf_counter()
        make_capture(path, args.frames)
        print(f"generated {path} ({path.stat().st_size >> 20} MB) in {time.perf_counter() - t:.1f} s")
    keliu = run_child(path, sightings=False)
    print(f"keliu parse+identify: {keliu['frames']:,} frames in {keliu['seconds']:.2f} s = {keliu['fps']:,.0f} "
          f"frames/s (cpu {keliu['cpu_seconds']:.2f} s), peak RSS {keliu['peak_mb']:.0f} MB, "
          f"{keliu['devices']:,} estimated devices on the last day")
    full = run_child(path, sightings=True)
    print(f"keliu parse+identify+sightings: {full['fps']:,.0f} frames/s")
    ts_s, ts_n = tshark(path)
    print(f"tshark, same fields, same file: {ts_n:,} rows in {ts_s:.1f} s = {ts_n / ts_s:,.0f} frames/s")
    sc_s, sc_n = scapy(path, args.scapy_frames)
    print(f"scapy dissection, first {sc_n:,} frames: {sc_s:.1f} s = {sc_n / sc_s:,.0f} frames/s")
    result = {
        "keliu_fps": round(keliu["fps"]), "tshark_fps": round(ts_n / ts_s), "scapy_fps": round(sc_n / sc_s),
        "vs_tshark": round(keliu["fps"] / (ts_n / ts_s), 1), "vs_scapy": round(keliu["fps"] / (sc_n / sc_s)),
        "peak_mb": round(keliu["peak_mb"]), "keliu_sightings_fps": round(full["fps"]), "frames": keliu["frames"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
