"""Sensor benchmark: parse + identify probe requests from a 1,000,000-frame pcap, against tshark and scapy.

    .venv/bin/python bench/sensor.py [--frames N] [--scapy-frames N] [--cli]

``--cli`` runs only step 4 with its tshark baseline (item 6 of issue 17: the CLI >= 5x tshark).

1. Generates (once; kept in the temp dir) a pcap of simulated store days (``keliu.testing.simulate``): radiotap, a mix of
   phone models, half of them rotating their MAC.
2. keliu: a fresh process reads the file in chunks, parses every frame (``sensor.frames``) and assigns every probe
   its device id (``sensor.identity``, randomized-MAC grouping included); frames/s and the process's peak RSS.
   Also reported: the same plus building the sightings (sid hashing), which delivery needs.
3. tshark extracting the same fields (time, source address, signal, sequence number, SSID) from the same file.
4. ``keliu sensor parse FILE --format csv`` as a user runs it (a fresh process: configuration, the same parse and
   identify, every row written as CSV to a pipe), against tshark writing its fields to a pipe; wall and CPU seconds.
5. scapy dissecting probe requests the way open-source probe counters do (``haslayer(Dot11ProbeReq)``, ``addr2``,
   ``dBm_AntSignal``, ``SC``, the SSID element), on the first ``--scapy-frames`` frames of the same file.

The last output line is one JSON object: keliu_fps, tshark_fps, scapy_fps, vs_tshark, vs_scapy, peak_mb, cli_fps,
cli_vs_tshark, cli_cpu_vs_tshark, ...
Targets: keliu >= 300,000 frames/s on one core, >= 10x tshark, >= 500x scapy; the CSV CLI >= 5x tshark.
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


TSHARK_FIELDS = ["-T", "fields", "-e", "frame.time_epoch", "-e", "wlan.sa", "-e", "radiotap.dbm_antsignal",
                 "-e", "wlan.seq", "-e", "wlan.ssid"]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the child) and output lines of ``cmd`` writing to a pipe."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, proc.stdout.count(b"\n")


def tshark(path: Path) -> tuple[float, float, int]:
    return timed(["tshark", "-r", str(path), *TSHARK_FIELDS])


def cli_csv(path: Path) -> tuple[float, float, int]:
    """``keliu sensor parse FILE --format csv`` in a fresh process (a throw-away device key, nothing stored)."""
    with tempfile.TemporaryDirectory() as var:
        env = {**os.environ, "KELIU_VAR_DIR": var, "PYTHONPATH": str(ROOT)}
        wall, cpu, lines = timed([sys.executable, "-c", "from keliu.cli import main; main()", "sensor", "parse",
                                  str(path), "--format", "csv"], env)
    return wall, cpu, lines - 1  # the header


def compare_cli(path: Path) -> dict[str, float]:
    print(f"load average before: {os.getloadavg()}")
    c_wall, c_cpu, c_n = cli_csv(path)
    print(f"keliu sensor parse --format csv: {c_n:,} rows in {c_wall:.1f} s (cpu {c_cpu:.1f} s) = "
          f"{c_n / c_wall:,.0f} frames/s")
    t_wall, t_cpu, t_n = tshark(path)
    print(f"tshark, same fields, same file: {t_n:,} rows in {t_wall:.1f} s (cpu {t_cpu:.1f} s) = "
          f"{t_n / t_wall:,.0f} frames/s")
    return {"cli_fps": round(c_n / c_wall), "cli_rows": c_n, "cli_tshark_fps": round(t_n / t_wall),
            "cli_vs_tshark": round(t_wall / c_wall * c_n / t_n, 2), "cli_cpu_vs_tshark": round(t_cpu / c_cpu, 2)}


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
    ap.add_argument("--cli", action="store_true", help="only the CSV command line against tshark")
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
    if args.cli:
        print(json.dumps({**compare_cli(path), "load_avg_1m": round(os.getloadavg()[0], 2)}))
        return
    keliu = run_child(path, sightings=False)
    print(f"keliu parse+identify: {keliu['frames']:,} frames in {keliu['seconds']:.2f} s = {keliu['fps']:,.0f} "
          f"frames/s (cpu {keliu['cpu_seconds']:.2f} s), peak RSS {keliu['peak_mb']:.0f} MB, "
          f"{keliu['devices']:,} estimated devices on the last day")
    full = run_child(path, sightings=True)
    print(f"keliu parse+identify+sightings: {full['fps']:,.0f} frames/s")
    ts_s, _cpu, ts_n = tshark(path)
    print(f"tshark, same fields, same file: {ts_n:,} rows in {ts_s:.1f} s = {ts_n / ts_s:,.0f} frames/s")
    sc_s, sc_n = scapy(path, args.scapy_frames)
    print(f"scapy dissection, first {sc_n:,} frames: {sc_s:.1f} s = {sc_n / sc_s:,.0f} frames/s")
    result = {
        "keliu_fps": round(keliu["fps"]), "tshark_fps": round(ts_n / ts_s), "scapy_fps": round(sc_n / sc_s),
        "vs_tshark": round(keliu["fps"] / (ts_n / ts_s), 1), "vs_scapy": round(keliu["fps"] / (sc_n / sc_s)),
        "peak_mb": round(keliu["peak_mb"]), "keliu_sightings_fps": round(full["fps"]), "frames": keliu["frames"],
        **compare_cli(path), "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
