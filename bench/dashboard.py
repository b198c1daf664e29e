"""Bench of the built-in dashboard's API on SQLite holding a year of rollups for 50 stores (issue 7).

Targets: the store view answers a 90-day range in under 200 ms (p95) and the mall view of 50 stores in under
500 ms (p95). Each request goes through the portal app (login, tenancy, ``analytics.report``, the view model,
JSON), in-process with Flask's test client, so the figures are server time without the network. Each request
also fetches the comparison week, as the page does. The baseline printed next to each figure is
``analytics.report`` alone for the same range (what the dashboard adds is the difference).

On a shared machine the p95 follows the other processes' load; the p50 is printed next to it.

The database: one mall of 50 stores, 365 days, per store-day one ``1d``, 24 ``1h`` and 288 ``5m`` rollup rows
(5.7 million rows, as the pipeline keeps them for ever), a ``mall_days`` row per day and 20 store-to-store
transitions per day. Run: ``.venv/bin/python bench/dashboard.py`` (a few minutes, mostly loading the data;
``--keep DIR`` keeps the database for another run). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TZ = ZoneInfo("Asia/Shanghai")
MALL = "bench-mall"
LAST_DAY = date(2026, 11, 22)
PASSWORD = "bench-password-not-secret"
#: share of a day's traffic per store-local hour (shops open 10-22)
PROFILE = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 8, 10, 9, 8, 8, 9, 10, 11, 10, 6, 3, 2, 0]


def epoch(day: date, hour: int = 0, minute: int = 0) -> int:
    return int(datetime.combine(day, dtime(hour, minute), TZ).timestamp())


def load(db: Path, stores: int, days: int, with_5m: bool) -> int:
    """Insert the rollups straight through sqlite3 (the schema was created by the app's migrations)."""
    from analytics.store import COUNTS

    rng = random.Random(7)
    cols = ["store", "period", "start", "mall", "day", *COUNTS, "capture_rate", "median_dwell_s", "updated_at"]
    sql = f"INSERT INTO rollups ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    n = 0
    first = LAST_DAY - timedelta(days=days - 1)

    def row(sid: str, period: str, start: int, day: str, v: int, p: int) -> tuple[Any, ...]:
        counts = {"visitors": v, "passersby": p, "visits": v + v // 10, "new_visitors": v * 6 // 10,
                  "repeat_visitors": v - v * 6 // 10, "staff_excluded": 3 if period == "1d" else 0,
                  "wifi_logins": v // 5, "new_members": v // 20, "dwell_lt5m": 0, "dwell_5_20m": v // 2,
                  "dwell_20_60m": v // 4, "dwell_1_6h": v - v // 2 - v // 4, "dwell_gt6h": 0,
                  "loyal_first_time": v * 6 // 10, "loyal_daily": v // 20, "loyal_weekly": v // 10,
                  "loyal_monthly": v // 10, "loyal_occasional": v - v * 6 // 10 - v // 20 - 2 * (v // 10)}
        rate = v / (v + p) if v + p else 0.0
        return (sid, period, start, MALL, day, *[counts[c] for c in COUNTS], rate, 600.0 + v, 0.0)

    for s in range(stores):
        sid = f"store-{s:02d}"
        rows: list[tuple[Any, ...]] = []
        for d in range(days):
            day = first + timedelta(days=d)
            iso = day.isoformat()
            v_day, p_day = rng.randint(100, 400), rng.randint(400, 1600)
            hv = [v_day * w // 100 for w in PROFILE]
            hp = [p_day * w // 100 for w in PROFILE]
            rows.append(row(sid, "1d", epoch(day), iso, sum(hv), sum(hp)))
            for h in range(24):
                rows.append(row(sid, "1h", epoch(day, h), iso, hv[h], hp[h]))
                if with_5m:
                    for m in range(12):
                        rows.append(row(sid, "5m", epoch(day, h, 5 * m), iso, hv[h] // 12, hp[h] // 12))
        conn.executemany(sql, rows)
        conn.commit()
        n += len(rows)
    mall_rows, trans_rows = [], []
    for d in range(days):
        day = (first + timedelta(days=d)).isoformat()
        mall_rows.append((MALL, day, 150 * stores, 600 * stores, 3 * stores, 0.2, 0.0))
        for _ in range(20):
            a, b = rng.sample(range(stores), 2)
            trans_rows.append((MALL, day, f"store-{a:02d}", f"store-{b:02d}", rng.randint(1, 30)))
    conn.executemany("INSERT INTO mall_days VALUES (?, ?, ?, ?, ?, ?, ?)", mall_rows)
    conn.executemany("INSERT OR IGNORE INTO mall_transitions VALUES (?, ?, ?, ?, ?)", trans_rows)
    # one sighting per store, so that "sensor last reported" has something to find
    conn.executemany("INSERT INTO sightings (sid, ts, store, sensor, device, rssi, freq, seq, randomized) "
                     "VALUES (?, ?, ?, 'sensor-1', '0123456789abcdef', -60, 2437, 1, 0)",
                     [(f"bench-{s}", float(epoch(LAST_DAY, 20)), f"store-{s:02d}") for s in range(stores)])
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return n


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm-up: first-query caches are not what a manager waits for on the second click
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=50)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--no-5m", action="store_true", help="leave out the 5-minute rollups (faster to load)")
    ap.add_argument("--keep", metavar="DIR", type=Path,
                    help="build the database in DIR and keep it; if DIR holds one already, reuse it (no loading)")
    args = ap.parse_args()

    from analytics import report
    from portal.app import create_app, start_up

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="keliu-bench-dash-"))
    tmp.mkdir(parents=True, exist_ok=True)
    reuse = (tmp / "keliu.db").exists()
    stores = [{"id": f"store-{s:02d}", "mall": MALL, "name": f"店铺 {s:02d}"} for s in range(args.stores)]
    clock = float(epoch(LAST_DAY, 21))
    app = create_app({"KELIU": {"database_url": f"sqlite:///{tmp / 'keliu.db'}", "var_dir": str(tmp / "var"),
                                "malls": [{"id": MALL, "name": "Bench Mall"}], "stores": stores,
                                "portal": {"store": "store-00", "admin_password": PASSWORD}},
                      "TESTING": True, "WTF_CSRF_ENABLED": False, "CLOCK": lambda: clock})
    start_up(app)
    t0 = time.perf_counter()
    if reuse:
        with sqlite3.connect(tmp / "keliu.db") as conn:
            rows = int(conn.execute("SELECT count(*) FROM rollups").fetchone()[0])
        expected = args.stores * args.days * (25 + (0 if args.no_5m else 288))
        if rows != expected:
            sys.exit(f"bench: {tmp / 'keliu.db'} holds {rows} rollup rows, not {expected}: use another --keep DIR")
    else:
        rows = load(tmp / "keliu.db", args.stores, args.days, not args.no_5m)
    load_s = time.perf_counter() - t0
    print(f"{'reused' if reuse else 'loaded'} {rows:,} rollup rows for {args.stores} stores x {args.days} days "
          f"in {load_s:.1f} s ({sum(p.stat().st_size for p in tmp.glob('keliu.db*')) / 1e6:.0f} MB)")

    client = app.test_client()
    r = client.post("/admin/login", data={"name": "admin", "password": PASSWORD})
    assert r.status_code == 302, r.status_code
    engine = app.extensions["keliu"].engine
    rng = random.Random(1)
    start90 = LAST_DAY - timedelta(days=89)

    def store_api() -> None:
        sid = f"store-{rng.randrange(args.stores):02d}"
        r = client.get(f"/api/v1/stores/{sid}/dashboard?start={start90}&end={LAST_DAY}")
        assert r.status_code == 200 and len(r.json["tables"]) == 6, r.status_code

    def store_report() -> None:
        sid = f"store-{rng.randrange(args.stores):02d}"
        report.store_range(engine, sid, start90, LAST_DAY)
        report.store_range(engine, sid, start90 - timedelta(days=7), LAST_DAY - timedelta(days=7))

    def mall_api(days: int) -> Callable[[], None]:
        def run() -> None:
            start = LAST_DAY - timedelta(days=days - 1)
            r = client.get(f"/api/v1/malls/{MALL}/dashboard?start={start}&end={LAST_DAY}")
            assert r.status_code == 200 and len(r.json["tables"][1]["rows"]) == args.stores, r.status_code
        return run

    def mall_report() -> None:
        report.mall_range(engine, MALL, LAST_DAY, LAST_DAY)
        report.mall_range(engine, MALL, LAST_DAY - timedelta(days=7), LAST_DAY - timedelta(days=7))

    store_samples, mall_samples = timed(store_api, args.runs), timed(mall_api(1), args.runs)
    figures = {
        "store_90d_p95_ms": p95(store_samples),
        "store_90d_p50_ms": statistics.median(store_samples),
        "store_90d_report_only_p95_ms": p95(timed(store_report, args.runs)),
        "mall_50_p95_ms": p95(mall_samples),
        "mall_50_p50_ms": statistics.median(mall_samples),
        "mall_50_report_only_p95_ms": p95(timed(mall_report, args.runs)),
        "mall_50_30d_p95_ms": p95(timed(mall_api(30), max(10, args.runs // 2))),
    }
    print(f"store view, 90 days + comparison week:  p95 {figures['store_90d_p95_ms']:.1f} ms, "
          f"p50 {figures['store_90d_p50_ms']:.1f} ms "
          f"(target 200; analytics.report alone {figures['store_90d_report_only_p95_ms']:.1f} ms)")
    print(f"mall view, {args.stores} stores, 1 day + comparison: p95 {figures['mall_50_p95_ms']:.1f} ms, "
          f"p50 {figures['mall_50_p50_ms']:.1f} ms "
          f"(target 500; analytics.report alone {figures['mall_50_report_only_p95_ms']:.1f} ms)")
    print(f"mall view, {args.stores} stores, 30 days:          p95 {figures['mall_50_30d_p95_ms']:.1f} ms")
    engine.dispose()
    if args.keep is None:
        shutil.rmtree(tmp)
    out = {k: round(v, 1) for k, v in figures.items()}
    out.update(stores=args.stores, days=args.days, rollup_rows=rows, runs=args.runs,
               store_ok=out["store_90d_p95_ms"] < 200, mall_ok=out["mall_50_p95_ms"] < 500)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
