"""Benchmark of analytics (issue 6), two headline numbers in one run:

1. 10 million sightings (a large mall's day) → visits → the day's metrics with the vectorized core, against a
   straightforward pandas groupby-apply baseline (run on a subset and extrapolated linearly when it would take too
   long; the output says so). Peak memory is the process's maximum resident set size.
2. 200 stores' daily rollups over 2 Celery workers versus 1 (Redis broker, PostgreSQL database and results).

The last line is one JSON object. Usage: ``python bench/analytics.py [--sightings N] [--stores N] [--no-celery]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.metrics import store_day
from analytics.visits import Rules, summarize, visits

DAY_START_MS = 1_767_542_400_000  # 2026-01-05 00:00 Asia/Shanghai
RULES = Rules()


def mall_day(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sightings of a mall day: passers-by (weak, brief), visitors (strong, log-normal dwell), staff and
    fixed devices (all day). Returns (ts ms, device uint64, rssi int16), unsorted like sensor batches."""
    rng = np.random.default_rng(seed)
    scan_s = 30.0
    devices = int(n / 14)
    kind = rng.choice(3, size=devices, p=[0.72, 0.275, 0.005])  # passer-by, visitor, staff
    dur = np.where(kind == 0, rng.uniform(10, 120, devices),
                   np.where(kind == 1, rng.lognormal(np.log(900), 0.8, devices), 11 * 3600.0))
    arrive = np.where(kind == 2, 10 * 3600.0, rng.uniform(10 * 3600, 22 * 3600 - 60, devices))
    mean = np.where(kind == 0, rng.uniform(-88, -72, devices), rng.uniform(-66, -45, devices))
    counts = np.maximum(1, rng.poisson(dur / scan_s))
    counts = np.floor(counts * (n / counts.sum())).astype(np.int64)
    counts[: n - counts.sum()] += 1
    dev = np.repeat(np.arange(devices), counts)
    t = arrive[dev] + rng.random(n) * dur[dev]
    ts = DAY_START_MS + np.minimum(t, 86399.0).astype(np.int64) * 1000 + rng.integers(0, 1000, n)
    rssi = np.clip(mean[dev] + rng.normal(0, 4, n), -100, -20).astype(np.int16)
    ids = rng.integers(1, 2**63, size=devices, dtype=np.int64).astype(np.uint64)
    perm = rng.permutation(n)
    return ts[perm], ids[dev][perm], rssi[perm]


def keliu(ts: np.ndarray, dev: np.ndarray, rssi: np.ndarray) -> tuple[float, int, dict[str, float]]:
    t0 = time.perf_counter()
    state = summarize(ts, dev, rssi, RULES, DAY_START_MS)
    sd = store_day(state, RULES, DAY_START_MS)
    seconds = time.perf_counter() - t0
    (d,) = sd.rollup("1d")
    return seconds, len(sd.visits), {"visitors": d.visitors, "passersby": d.passersby,
                                     "median_dwell_s": d.median_dwell_s}


def pandas_baseline(ts: np.ndarray, dev: np.ndarray, rssi: np.ndarray) -> tuple[float, int]:
    """The straightforward way: a DataFrame, groupby device, apply a Python sessionizer per device."""
    import pandas as pd

    gap, dwell = RULES.gap_ms, RULES.min_dwell_ms

    def sessions(g: pd.DataFrame) -> list[tuple[int, int]]:
        g = g.sort_values("ts")
        out: list[tuple[int, int]] = []
        start = enter = last = None
        for t, r in zip(g["ts"].tolist(), g["rssi"].tolist()):
            if r < RULES.stay_rssi:
                continue
            if last is not None and t - last > gap:
                if enter is not None and last - enter >= dwell:
                    out.append((enter, last))
                start = enter = None
            if start is None:
                start = t
            if enter is None and r >= RULES.visit_rssi:
                enter = t
            last = t
        if enter is not None and last is not None and last - enter >= dwell:
            out.append((enter, last))
        return out

    t0 = time.perf_counter()
    df = pd.DataFrame({"ts": ts, "dev": dev, "rssi": rssi})
    df = df[df["rssi"] >= RULES.passerby_rssi]
    per_dev = df.groupby("dev").apply(sessions, include_groups=False)
    n_visits = int(sum(len(v) for v in per_dev))
    visitors = int(sum(1 for v in per_dev if v))
    _ = len(per_dev) - visitors  # passers-by
    return time.perf_counter() - t0, n_visits


# -------------------------------------------------------------------------------------------------------------
# Celery: 200 stores' rollups, 2 workers vs 1


def celery_bench(stores: int) -> dict[str, float]:
    import sqlalchemy as sa

    from analytics.celery_app import make_celery
    from keliu import config, db

    pg = os.environ.get("KELIU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    redis = os.environ.get("KELIU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"keliu_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = pg.rsplit("/", 1)[0] + "/" + name
    tmp = Path(tempfile.mkdtemp(prefix="keliu-bench-"))
    (tmp / "keliu.toml").write_text("")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KELIU_DATABASE_URL": url, "KELIU_ANALYTICS_BROKER_URL": redis,
           "KELIU_ANALYTICS_RESULT_BACKEND": "db+" + url, "KELIU_ANALYTICS_QUEUE": queue,
           "KELIU_CONFIG": str(tmp / "keliu.toml"), "KELIU_VAR_DIR": str(tmp / "var")}
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        ts, dev, rssi = mall_day(6000, seed=2)
        from sensor import store as sensor_store
        from sensor.records import Sighting

        base = [Sighting(sid=f"b{i}", ts=float(t) / 1000, store="st0", sensor="s", device=f"{int(d):016x}",
                         rssi=int(r), freq=2437, seq=None, randomized=False)
                for i, (t, d, r) in enumerate(zip(ts.tolist(), dev.tolist(), rssi.tolist()))]
        sensor_store.insert_sightings(engine, base)
        with engine.begin() as conn:  # the other stores: the same day, replicated in SQL
            conn.execute(sa.text(
                "INSERT INTO sightings (sid, ts, store, sensor, device, rssi, freq, seq, randomized) "
                "SELECT s.sid || '-' || n, s.ts, 'st' || n, s.sensor, s.device, s.rssi, s.freq, s.seq, s.randomized "
                "FROM sightings s, generate_series(1, :m) AS n WHERE s.store = 'st0'"), {"m": stores - 1})
            conn.execute(sa.text("ANALYZE sightings"))
        cfg = config.load(env=env)
        app = make_celery(cfg)
        day = "2026-01-05"
        out: dict[str, float] = {}
        for workers in (1, 2):
            procs = []
            for w in range(workers):
                log = open(tmp / f"w{workers}-{w}.log", "wb")  # noqa: SIM115 - closed below
                procs.append((subprocess.Popen(
                    [sys.executable, "-m", "keliu.cli", "analytics", "worker", "-n", f"b{workers}{w}-{queue}@bench",
                     "-c", "1", "--queues", queue, "--loglevel", "INFO"],
                    env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log))
            try:
                for w in range(workers):
                    deadline = time.monotonic() + 90
                    while b" ready." not in (tmp / f"w{workers}-{w}.log").read_bytes():
                        if time.monotonic() > deadline:
                            raise TimeoutError((tmp / f"w{workers}-{w}.log").read_text())
                        time.sleep(0.2)
                # warm-up: every worker process imports, connects and creates its engine before the clock starts
                for r in [app.tasks["analytics.rollup_store"].delay(f"st{i}", day, 1e10) for i in range(4 * workers)]:
                    r.get(timeout=120)
                t0 = time.perf_counter()
                results = [app.tasks["analytics.rollup_store"].delay(f"st{i}", day, 1e10) for i in range(stores)]
                for r in results:
                    r.get(timeout=600)
                out[f"workers_{workers}_s"] = time.perf_counter() - t0
            finally:
                for p, log in procs:
                    os.killpg(p.pid, signal.SIGTERM)
                for p, log in procs:
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()
                    log.close()
        with engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM rollups WHERE period = '1d'")).scalar()
        out["stores_rolled"] = float(n or 0)
        return out
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sightings", type=int, default=10_000_000)
    ap.add_argument("--baseline-subset", type=int, default=300_000)
    ap.add_argument("--stores", type=int, default=200)
    ap.add_argument("--no-celery", action="store_true")
    args = ap.parse_args()

    ts, dev, rssi = mall_day(args.sightings)
    print(f"generated {len(ts):,} sightings of {len(np.unique(dev)):,} devices", flush=True)
    seconds, n_visits, day = keliu(ts, dev, rssi)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"keliu: {seconds:.2f} s, {n_visits:,} visits, {day}, peak RSS {peak_mb:.0f} MB", flush=True)

    sub = min(args.baseline_subset, args.sightings)
    # the subset: whole devices, so that both sides compute the same visits
    keep = dev % np.uint64(max(1, round(args.sightings / sub))) == 0
    sts, sdev, srssi = ts[keep], dev[keep], rssi[keep]
    base_s, base_visits = pandas_baseline(sts, sdev, srssi)
    ours_sub = len(visits(summarize(sts, sdev, srssi, RULES, DAY_START_MS), RULES))
    assert ours_sub == base_visits, (ours_sub, base_visits)
    extrapolated = len(sts) < len(ts)
    baseline_seconds = base_s * len(ts) / len(sts)
    print(f"pandas groupby-apply: {base_s:.2f} s on {len(sts):,} sightings ({base_visits:,} visits, identical to "
          f"keliu's on the same subset)" + (f", extrapolated linearly to {len(ts):,}: {baseline_seconds:.1f} s"
                                             if extrapolated else ""), flush=True)
    result: dict[str, object] = {
        "sightings": len(ts), "seconds": round(seconds, 3), "peak_mb": round(peak_mb, 1), "visits": n_visits,
        "baseline_seconds": round(baseline_seconds, 2), "baseline_extrapolated_from": len(sts) if extrapolated else None,
        "speedup": round(baseline_seconds / seconds, 1)}
    if not args.no_celery:
        c = celery_bench(args.stores)
        print(f"celery: {args.stores} stores' day rollups: 1 worker {c['workers_1_s']:.1f} s, "
              f"2 workers {c['workers_2_s']:.1f} s", flush=True)
        result.update({"stores": args.stores, "celery_1_worker_s": round(c["workers_1_s"], 2),
                       "celery_2_workers_s": round(c["workers_2_s"], 2),
                       "celery_speedup": round(c["workers_1_s"] / c["workers_2_s"], 2)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
