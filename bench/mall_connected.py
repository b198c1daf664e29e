"""Bench: what the mall's and the operator's ``connected`` blocks and bands cost (issue 17 item 3), on PostgreSQL.

The database: one mall of ``--stores`` stores (default 10) over ``--days`` days (default 7), per store-day
``--stations`` connected stations (default 110) of 30 minutes each, polled every 10 s (about 20,000 rows of basis
"connected" a store-day, as in docs/METRICS.md's measurement of one store), a fifth of them connected at a second
store the same day, and as many probe sightings again (only so that the connected rows are a part of the table);
a daily rollup per store-day and a mall day per day; then this tree's pipeline stores each store-day's connected
visits as its roll-up does (``analytics.pipeline.write_connected``, timed: what the roll-up adds). Then
``analytics.report.mall_range`` and ``operator_range`` over the last day and over the whole range, ``--repeat``
times each (the median printed), by this tree, in a subprocess; then by this tree again with the stored connected
visits deleted: the baseline (``unrolled``: every day not rolled up, made from its polls at report time, as the
reports did before the roll-up stored them, and still do for a day not rolled up); ``--baseline TREE`` also times
another checkout (e.g. an older commit) on the same database in the same run. Each run's connected blocks must
equal the baseline's. Last, the polls' query alone with its plan and
the stored rows' query alone with its plan (EXPLAIN ANALYZE).

Run: ``PYTHONPATH=. .venv/bin/python bench/mall_connected.py [--baseline TREE]``. The last line is one JSON
object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/ (its portal.py is not the package)
TZ = ZoneInfo("Asia/Shanghai")
LAST_DAY = date(2026, 11, 22)

#: the timing run itself: ``python bench/mall_connected.py --time URL STORES DAYS REPEAT`` with a tree on the path
TIMER = """
import json, statistics, sys, time
from datetime import date, timedelta
from analytics import report
from keliu import db
url, days, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
last = date(2026, 11, 22)
engine = db.make_engine(url)
out = {}
for name, first in (("1d", last), (f"{days}d", last - timedelta(days=days - 1))):
    for what, call in (("mall", lambda a: report.mall_range(engine, "bm", a, last)),
                       ("operator", lambda a: report.operator_range(engine, a, last))):
        call(first)  # warm-up: imports, connection, the database's cache
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            got = call(first)
            times.append(time.perf_counter() - t0)
        out[f"{what}_{name}_s"] = statistics.median(times)
        out[f"{what}_{name}_connected"] = got["totals"].get("connected")
print(json.dumps(out))
"""


def load(engine: Any, stores: int, days: int, stations: int) -> dict[str, int]:
    """The mall's rows, written by SQL (``generate_series``) for speed."""
    import sqlalchemy as sa

    first = LAST_DAY - timedelta(days=days - 1)
    start = int(datetime.combine(first, datetime.min.time(), TZ).timestamp())
    polls = 30 * 6 + 1  # 30 minutes every 10 s, both ends
    with engine.begin() as conn:
        # station k of store s on day d connects at 10:00 + k × 4 min (spread over the opening hours); the
        # stations k < stations / 5 of store s are also connected at store s + 1 the same day, an hour later
        conn.execute(sa.text("""
            INSERT INTO sightings (sid, ts, store, sensor, device, rssi, freq, seq, randomized, basis, kind)
            SELECT md5(s || '-' || d || '-' || k || '-' || p || '-' || twice), :start + d * 86400 + 36000
                   + (k * 240) % 43200 + twice * 3600 + p * 10,
                   'bs' || ((s + twice) % :stores), 'ap', substr(md5(d || '-' || s || '-' || k), 1, 16), NULL, 2437,
                   NULL, false, 'connected', 'probe'
            FROM generate_series(0, :stores - 1) s, generate_series(0, :days - 1) d,
                 generate_series(0, :stations - 1) k, generate_series(0, :polls - 1) p, generate_series(0, 1) twice
            WHERE twice = 0 OR k < :stations / 5"""),
            {"start": start, "stores": stores, "days": days, "stations": stations, "polls": polls})
        n_conn = conn.execute(sa.text("SELECT count(*) FROM sightings")).scalar() or 0
        conn.execute(sa.text("""
            INSERT INTO sightings (sid, ts, store, sensor, device, rssi, freq, seq, randomized, basis, kind)
            SELECT md5('p' || i), :start + (i % (:days * 86400)), 'bs' || (i % :stores), 'sensor',
                   substr(md5('d' || (i % 5000)), 1, 16), -60, 2437, NULL, true, 'probe', 'probe'
            FROM generate_series(0, :n - 1) i"""), {"start": start, "days": days, "stores": stores, "n": n_conn})
        rows = []
        for s in range(stores):
            for d in range(days):
                day = first + timedelta(days=d)
                rows.append({"store": f"bs{s}", "period": "1d", "mall": "bm", "day": day,
                             "start": int(datetime.combine(day, datetime.min.time(), TZ).timestamp()),
                             "visitors": 300, "passersby": 1200, "visits": 330, "capture_rate": 0.2,
                             "median_dwell_s": 1500.0, "updated_at": 0.0})
        from analytics.store import COUNTS, mall_days, rollups

        conn.execute(sa.insert(rollups), [{c: 0 for c in COUNTS} | r for r in rows])
        conn.execute(sa.insert(mall_days), [{"mall": "bm", "day": first + timedelta(days=d), "visitors": 2500,
                                             "passersby": 11000, "staff_excluded": 5, "capture_rate": 0.185,
                                             "updated_at": 0.0} for d in range(days)])
        conn.execute(sa.text("ANALYZE sightings"))
    return {"connected_rows": int(n_conn), "probe_rows": int(n_conn)}


def roll(engine: Any, cfg: Any, stores: int, days: int) -> dict[str, Any]:
    """Each store-day's connected visits stored as the pipeline's roll-up stores them (its connected part alone:
    the bench's rollups stay its own), timed."""
    from analytics import pipeline

    first = LAST_DAY - timedelta(days=days - 1)
    t0 = time.perf_counter()
    n = 0
    for s in range(stores):
        for d in range(days):
            with engine.begin() as conn:
                n += pipeline.write_connected(conn, pipeline.context(conn, cfg, f"bs{s}"), first + timedelta(days=d))
    return {"roll_s": time.perf_counter() - t0, "stored_rows": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=10)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--stations", type=int, default=110)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", default=None, help="another checkout to time too (an older commit's tree)")
    args = ap.parse_args()

    import sqlalchemy as sa

    from keliu import config, db, tenants

    pg = os.environ.get("KELIU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    name = f"keliu_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = pg.rsplit("/", 1)[0] + "/" + name
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        cfg = config.load(overrides={
            "database_url": url, "malls": [{"id": "bm", "name": "Bench mall"}],
            "stores": [{"id": f"bs{s}", "mall": "bm", "name": f"Store {s}"} for s in range(args.stores)]}, env={})
        tenants.sync(engine, cfg)
        t0 = time.perf_counter()
        sizes = load(engine, args.stores, args.days, args.stations)
        print(f"loaded {sizes['connected_rows']:,} connected and {sizes['probe_rows']:,} probe sightings of "
              f"{args.stores} stores over {args.days} days in {time.perf_counter() - t0:.0f} s", flush=True)
        results: dict[str, Any] = {"stores": args.stores, "days": args.days, **sizes}
        results |= roll(engine, cfg, args.stores, args.days)
        print(f"stored {results['stored_rows']:,} connected visits of {args.stores * args.days} store-days in "
              f"{results['roll_s']:.1f} s ({results['roll_s'] / (args.stores * args.days) * 1000:.0f} ms a "
              "store-day)", flush=True)

        def timed(label: str, tree: str) -> None:
            got = subprocess.run([sys.executable, "-c", TIMER, url, str(args.days), str(args.repeat)],
                                 env={**os.environ, "PYTHONPATH": tree}, cwd=tree, capture_output=True, text=True,
                                 check=True)
            results[label] = json.loads(got.stdout.strip().splitlines()[-1])
            print(label, {k: v for k, v in results[label].items() if k.endswith("_s")}, flush=True)

        if args.baseline:
            timed("other", args.baseline)
        timed("this", str(ROOT))
        first = LAST_DAY - timedelta(days=args.days - 1)
        ids = ", ".join(f"'bs{s}'" for s in range(args.stores))
        with engine.connect() as conn:  # the stored rows' query alone, over the whole range, and its plan
            stored_plan = [r[0] for r in conn.execute(sa.text(
                "EXPLAIN ANALYZE SELECT store, day, device, start, \"end\", staff FROM connected_visits "
                f"WHERE store IN ({ids}) AND day >= '{first}' AND day <= '{LAST_DAY}'")).all()]
        print("\n".join(stored_plan), flush=True)
        results["stored_query_ms"] = float(stored_plan[-1].split()[-2]) if stored_plan[-1].startswith(
            "Execution Time") else None
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM connected_visits"))
            conn.execute(sa.text("DELETE FROM connected_days"))
        timed("unrolled", str(ROOT))
        labels = ["this", "other"] if args.baseline else ["this"]
        for label in labels:
            same = all(results[label][k] == results["unrolled"][k] for k in results["unrolled"]
                       if k.endswith("_connected"))
            results[f"{label}_same_connected"] = same
            print(f"{label}: connected blocks the same as the baseline's: {same}", flush=True)
            results[label] = {k: v for k, v in results[label].items() if not k.endswith("_connected")}
        # the connected rows' query alone, over the whole range, and its plan
        lo = datetime.combine(first, datetime.min.time(), TZ).timestamp()
        hi = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), TZ).timestamp()
        with engine.connect() as conn:
            plan = [r[0] for r in conn.execute(sa.text(
                f"EXPLAIN ANALYZE SELECT ts, device, store FROM sightings WHERE store IN ({ids}) AND ts >= {lo} "
                f"AND ts < {hi} AND basis = 'connected'")).all()]
        print("\n".join(plan), flush=True)
        results["plan_uses_partial_index"] = any("ix_sightings_connected" in p for p in plan)
        results["query_ms"] = float(plan[-1].split()[-2]) if plan[-1].startswith("Execution Time") else None
        results["unrolled"] = {k: v for k, v in results["unrolled"].items() if not k.endswith("_connected")}
        for k in [k for k in results["this"] if k.endswith("_s")]:
            base, this = results["unrolled"][k], results["this"][k]
            other = f", {args.baseline}: {results['other'][k] * 1000:.0f} ms" if args.baseline else ""
            print(f"{k}: baseline (unrolled) {base * 1000:.0f} ms, this {this * 1000:.0f} ms "
                  f"({base / this:.1f}x faster){other}")
        print(json.dumps(results))
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
