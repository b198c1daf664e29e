"""Benchmark of coupon redemption and the POS import (issue 15), with the naive baseline in the same run.

1. **Redemptions through the HTTP API on PostgreSQL**: one ``keliu portal`` (gunicorn with the configured workers,
   as deployed) serving ``POST /api/v1/stores/{store}/redemptions`` with a store token; wrk (closed loop, keep-alive,
   ``--connections``) sends each request with a different single-use code and its own idempotency key (a Lua
   script reads the codes from a file). ``redeem_rps`` and ``redeem_p99_ms`` are wrk's; every answer must be a
   201 (``redeem_errors`` counts the others). Target ≥ 500/s with p99 < 50 ms.
2. **Double redemptions through the HTTP API**: 100 rounds; in each, 64 threads released together (a barrier)
   redeem one fresh single-use code, each with its own idempotency key; then 64 more send one retried
   idempotency key (same body) for another fresh code. ``double_redemptions`` = Σ over rounds of (201 answers − 1)
   plus the ledger rows beyond one per code, checked in the database. Target 0.
3. **Baseline**: the naive redemption, read-check-write (``SELECT state``; if issued, ``UPDATE … SET
   state='redeemed' WHERE id=?`` and insert the ledger row), run the same way (100 rounds × 64 threads, each its
   own PostgreSQL connection, in process): ``baseline_double_redemptions`` is how many extra uses it let through.
4. **POS import**: ``keliu pos import`` (the CLI, in its own process) of generated CSV files of
   ``--pos-rows`` (1,000,000) and a fifth of that, with 2 % refunds of earlier sales, some duplicates and
   malformed rows; ``pos_import_rows_per_s`` for the large file and the process's peak RSS for both
   (``pos_import_peak_mb`` and ``pos_import_peak_mb_small``): memory does not grow with the file. Target ≥ 20,000
   rows/s.

The last line is one JSON object. Usage: ``.venv/bin/python bench/marketing.py [--duration S] [--connections N]
[--rounds N] [--pos-rows N] [--postgres URL] [--only redeem|race|pos]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import free_port, start_portal, stop, wait_listening, wrk

PG_ADMIN = os.environ.get("KELIU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
STORE = "demo-store"

#: wrk script: each request redeems the next unused code of the file (threads interleave over the list), with a
#: key of its own; the token and the file come as script arguments
REDEEM_LUA = """
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  codes = {}
  for line in io.lines(args[1]) do codes[#codes + 1] = line end
  token = args[2]
  step = tonumber(args[3])
  n = tid
  path = args[4]
  prefix = args[5]
end
function request()
  n = n + step
  local code = codes[(n % #codes) + 1]
  local body = '{"code":"' .. code .. '","idempotency_key":"' .. prefix .. n .. '","amount_cents":10000}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. token}, body)
end
"""


def make_database(admin_url: str) -> str:
    import sqlalchemy as sa

    name = f"keliu_bench_mkt_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, url: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


def prepare(url: str) -> tuple[int, str]:
    """Schema, tenants, an unlimited offer at the demo store and a store token."""
    from keliu import config, db, tenants
    from keliu.accounts import tokens
    from marketing.core.offers import parse_offer
    from marketing.store import coupons as store

    engine = db.make_engine(url)
    db.upgrade(engine)
    tenants.sync(engine, config.load(overrides={"database_url": url}))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        spec = parse_offer({"title": "bench", "kind": "amount_off", "value": 1000, "min_spend_cents": 5000,
                            "valid_days": 30, "per_member_issue_limit": None, "per_member_use_limit": None},
                           STORE, frozenset({STORE}))
        offer = store.create_offer(conn, spec, store_id=STORE, now=now, created_by="bench")
    _name, token = tokens.create_token(engine, role="store", store_id=STORE, now=now, name="bench")
    engine.dispose()
    return offer, token


def issue(url: str, offer_id: int, n: int) -> list[str]:
    """``n`` anonymous coupons of the offer (:func:`marketing.store.coupons.issue_batch`, 5,000 a transaction)."""
    from keliu import db
    from marketing.store import coupons as store

    engine = db.make_engine(url)
    out: list[str] = []
    now = datetime.now(UTC) - timedelta(minutes=1)
    while len(out) < n:
        with engine.begin() as conn:
            out += store.issue_batch(conn, offer_id=offer_id, count=min(5000, n - len(out)), store_id=STORE,
                                     now=now, channel="api")
    engine.dispose()
    return out


# --- 1. throughput ------------------------------------------------------------------------------------------------


def redeem_part(args: argparse.Namespace, tmp: Path, url: str, offer: int, token: str, port: int) -> dict[str, object]:
    n = int(args.duration * 3000) + 20000
    print(f"== redemptions through the HTTP API: issuing {n} single-use codes", flush=True)
    codes = issue(url, offer, n)
    warm, main = codes[:4000], codes[4000:]
    script = tmp / "redeem.lua"
    script.write_text(REDEEM_LUA)
    (tmp / "warm.txt").write_text("\n".join(warm) + "\n")
    (tmp / "codes.txt").write_text("\n".join(main) + "\n")
    path = f"/api/v1/stores/{STORE}/redemptions"
    base = f"http://127.0.0.1:{port}{path}"
    threads = 2

    def run(file: str, duration: int) -> dict[str, float]:
        return wrk(base, args.connections, duration, threads=threads, script=script,
                   script_args=(str(tmp / file), token, str(threads), path, f"{file}-"))

    run("warm.txt", 2)
    r = run("codes.txt", args.duration)
    print(f"redeem: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms "
          f"({r['requests']} requests, non-2xx {r['non_2xx_3xx']}; {args.connections} connections, closed loop)",
          flush=True)
    if r["requests"] > len(main):
        print("   (more requests than codes: the wrapped-around ones answered 409)", flush=True)
    return {"redeem_rps": round(r["rps"]), "redeem_p99_ms": round(r["p99_ms"], 1),
            "redeem_p50_ms": round(r["p50_ms"], 1), "redeem_errors": int(r["non_2xx_3xx"]),
            "redeem_connections": args.connections}


# --- 2. races through HTTP ----------------------------------------------------------------------------------------


def race_http(port: int, token: str, bodies: list[dict[str, object]]) -> list[int]:
    """POST every body at once from its own thread and connection (released together); the status codes."""
    import http.client

    barrier = threading.Barrier(len(bodies))
    status = [0] * len(bodies)

    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        payload = json.dumps(bodies[i])
        barrier.wait()
        conn.request("POST", f"/api/v1/stores/{STORE}/redemptions", payload,
                     {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        status[i] = conn.getresponse().status
        conn.close()

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return status


def race_part(args: argparse.Namespace, url: str, offer: int, token: str, port: int) -> dict[str, object]:
    import sqlalchemy as sa

    from keliu import db
    from marketing.store.models import coupons, redemptions

    rounds, width = args.rounds, 64
    print(f"== double redemptions through the HTTP API: {rounds} rounds x {width} concurrent attempts at one code, "
          f"and {rounds} rounds x {width} retries of one idempotency key", flush=True)
    codes = issue(url, offer, 2 * rounds)
    extra = 0
    statuses: dict[int, int] = {}
    for r in range(rounds):
        code = codes[2 * r]
        got = race_http(port, token, [{"code": code, "idempotency_key": f"race-{r}-{i}", "amount_cents": 10000}
                                      for i in range(width)])
        retried = race_http(port, token, [{"code": codes[2 * r + 1], "idempotency_key": f"retry-{r}",
                                           "amount_cents": 10000}] * width)
        for s in got + retried:
            statuses[s] = statuses.get(s, 0) + 1
        extra += max(0, got.count(201) - 1) + max(0, retried.count(201) - 1)
        if got.count(201) != 1 or retried.count(201) != 1 or retried.count(200) != width - 1:
            print(f"   round {r}: distinct keys {sorted(set(got))}, one key {sorted(set(retried))}", flush=True)
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(redemptions.c.coupon_id, sa.func.count()).join(
            coupons, coupons.c.id == redemptions.c.coupon_id).where(coupons.c.code.in_(codes))
            .group_by(redemptions.c.coupon_id)).all()
    engine.dispose()
    in_db = sum(n - 1 for _c, n in rows if n > 1)
    print(f"api: {extra} extra successful answers, {in_db} extra ledger rows; answers {statuses}", flush=True)
    return {"double_redemptions": extra + in_db, "race_rounds": rounds, "race_width": width,
            "race_statuses": {str(k): v for k, v in sorted(statuses.items())}}


def naive_redeem(engine: object, code: str, key: str) -> bool:
    """The baseline: read, check in Python, write (what django-oscar #2101 and Saleor #544 did)."""
    import sqlalchemy as sa

    from marketing.store.models import coupons, redemptions

    now = datetime.now(UTC)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        c = conn.execute(sa.select(coupons.c.id, coupons.c.state, coupons.c.offer_id)
                         .where(coupons.c.code == code)).first()
        if c is None or c.state != "issued":
            return False
        conn.execute(sa.update(coupons).where(coupons.c.id == c.id).values(state="redeemed", state_at=now))
        conn.execute(sa.insert(redemptions).values(
            kind="redeem", coupon_id=c.id, offer_id=c.offer_id, store_id=STORE, staff="naive", source="api",
            idempotency_key=key, request_hash="-", basket_cents=10000, discount_cents=1000, day=now.date(), ts=now))
    return True


def baseline_part(args: argparse.Namespace, url: str, offer: int) -> dict[str, object]:
    from keliu import db

    rounds, width = args.rounds, 64
    print(f"== baseline: naive read-check-write redemption, {rounds} rounds x {width} threads (own connections)",
          flush=True)
    codes = issue(url, offer, rounds)
    engine = db.make_engine(url, pool_size=width, max_overflow=0)
    extra = 0
    for r, code in enumerate(codes):
        barrier = threading.Barrier(width)
        wins = [False] * width

        def one(i: int, code: str = code, r: int = r, barrier: threading.Barrier = barrier,
                wins: list[bool] = wins) -> None:
            barrier.wait()
            wins[i] = naive_redeem(engine, code, f"naive-{r}-{i}")

        ts = [threading.Thread(target=one, args=(i,)) for i in range(width)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        extra += max(0, sum(wins) - 1)
    engine.dispose()
    print(f"baseline: {extra} extra uses of single-use codes let through over {rounds} rounds", flush=True)
    return {"baseline_double_redemptions": extra}


# --- 4. POS import ------------------------------------------------------------------------------------------------


def pos_line(seed: int, i: int) -> str:
    """Row ``i`` of a generated POS file: a sale (1 % with a phone number, none of them a member's), every 50th a
    refund of the sale before it, every 10,000th (from 5,000) malformed, every 10,000th (from 7,001) an exact
    duplicate of the row before it."""
    if i % 10000 == 7001:
        return pos_line(seed, i - 1)
    ts = (datetime(2026, 11, 1, 10, 0) + timedelta(seconds=i * 2)).strftime("%Y-%m-%d %H:%M:%S")
    if i % 50 == 49:
        return f"R{seed}-{i},{ts},1.00,refund,S{seed}-{i - 1},,\n"
    if i % 10000 == 5000:
        return f"S{seed}-{i},{ts},not money,sale,,,\n"
    phone = f"1381234{(i * 7919) % 10000:04d}" if i % 100 == 0 else ""
    return f"S{seed}-{i},{ts},{i % 900 + 10}.50,sale,,{phone},clerk{i % 7}\n"


def pos_rows(n: int, seed: int) -> Iterator[str]:
    yield "txn_id,ts,amount,kind,refund_of,phone,staff\n"
    for i in range(n):
        yield pos_line(seed, i)


IMPORT_CHILD = """
import resource, sys, time
from keliu.cli import main
t = time.perf_counter()
main(["pos", "import", sys.argv[1], "--store", sys.argv[2]])
print("ELAPSED", time.perf_counter() - t)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def pos_part(args: argparse.Namespace, tmp: Path, url: str) -> dict[str, object]:
    results = {}
    for label, n in (("small", args.pos_rows // 5), ("large", args.pos_rows)):
        path = tmp / f"pos-{n}.csv"
        with path.open("w", encoding="utf-8") as f:
            f.writelines(pos_rows(n, n))
        size_mb = path.stat().st_size / 1e6
        env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
        env.update({"KELIU_DATABASE_URL": url, "KELIU_VAR_DIR": str(tmp / "var"), "PYTHONPATH": str(ROOT)})
        print(f"== keliu pos import of {n:,} rows ({size_mb:.0f} MB CSV)", flush=True)
        wall = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", IMPORT_CHILD, str(path), STORE], env=env, cwd=tmp,
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - wall
        elapsed = float(out.stdout.split("ELAPSED")[1].split()[0])
        peak = int(out.stdout.split("MAXRSS_KB")[1].split()[0]) / 1024
        report = [line for line in out.stdout.splitlines() if line.startswith("import ")]
        print(f"   {report[0] if report else out.stdout[-300:]}", flush=True)
        print(f"   {n / elapsed:,.0f} rows/s ({elapsed:.1f} s in the command, {wall:.1f} s with start-up), "
              f"peak RSS {peak:.0f} MB", flush=True)
        results[label] = (n / elapsed, peak, n)
        path.unlink()
    return {"pos_import_rows_per_s": round(results["large"][0]), "pos_import_peak_mb": round(results["large"][1]),
            "pos_import_peak_mb_small": round(results["small"][1]), "pos_import_rows": results["large"][2],
            "pos_import_rows_small": results["small"][2],
            "pos_import_rows_per_s_small": round(results["small"][0])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--pos-rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=PG_ADMIN)
    parser.add_argument("--only", choices=["redeem", "race", "pos"], default=None)
    parser.add_argument("--threads", type=int, default=None, help="[portal] threads per worker (default: config's)")
    args = parser.parse_args()

    load_start = os.getloadavg()
    print(f"load average at the start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} "
          f"({os.cpu_count()} cores; the machine may be shared)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="keliu-bench-marketing-"))
    (tmp / "var").mkdir()
    url = make_database(args.postgres)
    out: dict[str, object] = {}
    try:
        offer, token = prepare(url)
        if args.only in (None, "redeem", "race"):
            port = free_port()
            extra = {"KELIU_PORTAL_CAPTIVE_PORT": str(free_port()), "KELIU_PORTAL_CLIENT_CONNECTIONS": "100000"}
            if args.threads:
                extra["KELIU_PORTAL_THREADS"] = str(args.threads)
            portal = start_portal(tmp, url, port, extra)
            try:
                wait_listening(port, portal)
                if args.only in (None, "redeem"):
                    out.update(redeem_part(args, tmp, url, offer, token, port))
                if args.only in (None, "race"):
                    out.update(race_part(args, url, offer, token, port))
            finally:
                stop(portal)
            if args.only in (None, "race"):
                out.update(baseline_part(args, url, offer))
        if args.only in (None, "pos"):
            out.update(pos_part(args, tmp, url))
    finally:
        drop_database(args.postgres, url)
    load_end = os.getloadavg()
    print(f"load average at the end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}", flush=True)
    out.update({"load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in load_end],
                "workers": int(os.environ.get("KELIU_PORTAL_WORKERS", "2")),
                "anchor_saleor_544": "usage limit overrun by concurrent checkouts",
                "bench_rusage_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
