"""Benchmark of the access and NAT log (issue 19). The last line is one JSON object.

1. **NAT log, two designs, one load** (real nft in network namespaces, ``keliu.testing.netbench``): 1,000 clients
   (four phone namespaces holding 250 LAN addresses each, spread over the whole DHCP range, every one allowed in
   the Gate) open new TCP connections to the internet at ``--cps`` (200) per second for ``--seconds``:
   - ``baseline``: a plain masquerade, no NAT log;
   - ``conntrack``: the same masquerade, every connection logged from conntrack events by Debian's **ulogd2**
     (NFCT input with its flow hash: one line per connection at its end, with start and end; GPRINT to a file);
   - ``portblock``: the rendered RFC 7422 chain (``router_config.render.nat_block_chains``): no per-connection
     log at all; the access log's login and logout records carry the block.
   Figures: the logger process's CPU (per 100 new connections/s), the whole machine's busy CPU during the run
   (shared with other users: noisy, reported for the kernel side, which no process owns), and the log volume
   per 1,000 clients and day (conntrack: bytes per line x connections a day at that rate; portblock: bytes of two
   access-log records, login and logout, per client and day, as PostgreSQL stores them with their indexes).
2. **query_ms**: "who used public address A, port P at T" over 180 days of 1,000 clients' synthetic, chained
   records (one session a day each) in PostgreSQL; the median of 50 random questions.
3. **verify_records_per_s**: ``keliu.accesslog.store.verify`` over the same records.

Needs root (namespaces), nft, ulogd2 and PostgreSQL on 127.0.0.1. Usage:
``python bench/accesslog.py [--cps 200] [--seconds 20] [--days 180] [--clients 1000] [--no-nat]``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netaddr
import sqlalchemy as sa

from keliu import db
from keliu.accesslog import chain, signing, store
from keliu.accesslog.tables import access_log, accesslog_head
from keliu.gate import AllowClient
from keliu.testing.netbench import WAN_INET, Bench
from router_config import portblock
from router_config.config import RouterConfig

PHONES = 4
CLK = os.sysconf("SC_CLK_TCK")
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"

SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7200))
s.listen(1024)
while True:
    c, _ = s.accept()
    c.close()
"""
# one phone: connections from its addresses in turn, at a steady rate, for a while; prints how many worked
LOAD = """
import random, socket, sys, time
host, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
addrs = sys.argv[4].split(",")
ok = fail = 0
t0 = time.monotonic()
n = 0
while (now := time.monotonic()) - t0 < seconds:
    due = t0 + n / rate
    if due > now:
        time.sleep(due - now)
    n += 1
    s = socket.socket()
    s.settimeout(2)
    try:
        s.bind((random.choice(addrs), 0))
        s.connect((host, 7200))
        s.recv(1)
        ok += 1
    except OSError:
        fail += 1
    finally:
        s.close()
print(ok, fail)
"""
ULOGD = """[global]
logfile="{tmp}/ulogd.log"
loglevel=5
plugin="/usr/lib/x86_64-linux-gnu/ulogd/ulogd_inpflow_NFCT.so"
plugin="/usr/lib/x86_64-linux-gnu/ulogd/ulogd_filter_IP2STR.so"
plugin="/usr/lib/x86_64-linux-gnu/ulogd/ulogd_output_GPRINT.so"
stack=ct1:NFCT,ip2str1:IP2STR,gp1:GPRINT
[ct1]
event_mask=0x00000007
hash_enable=1
[gp1]
file="{tmp}/nat.log"
sync=0
timestamp=1
"""


def busy_jiffies() -> int:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(parts) - parts[3] - parts[4]  # all but idle and iowait


def proc_jiffies(pid: int) -> int:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def client_addresses(cfg: RouterConfig, n: int, exclude: tuple[str, ...] = ()) -> list[str]:
    """``n`` addresses spread over the DHCP range, but those the bench's phones leased."""
    pool = [str(a) for a in netaddr.iter_iprange(cfg.dhcp_start, cfg.dhcp_end) if str(a) not in exclude]
    if len(pool) < n:
        raise SystemExit(f"the DHCP range holds {len(pool)} addresses, fewer than {n} clients")
    return [pool[i * len(pool) // n] for i in range(n)]


def nat_run(design: str, cps: float, seconds: float, clients: int, drain: float) -> dict[str, Any]:
    cfg = RouterConfig(walled_garden_domains=[], nat_log="portblock" if design == "portblock" else "none")
    with Bench("kal", phones=PHONES, cfg=cfg) as b:
        tmp = Path(tempfile.mkdtemp(prefix="keliu-accesslog-bench-"))
        rtr = b.router
        if design != "portblock":
            b.run(rtr, ["nft", "add chain inet keliu masq { type nat hook postrouting priority srcnat; }"],
                  check=True)
            b.run(rtr, ["nft", f'add rule inet keliu masq oifname "{cfg.wan_iface}" masquerade'], check=True)
        # conntrack entries of closed connections end at once, so that each is logged during the run
        b.run(rtr, ["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1",
                    "net.netfilter.nf_conntrack_tcp_timeout_close=1",
                    "net.netfilter.nf_conntrack_tcp_timeout_fin_wait=1",
                    "net.netfilter.nf_conntrack_tcp_timeout_last_ack=1",
                    "net.netfilter.nf_conntrack_timestamp=1"], check=True)
        addrs = client_addresses(cfg, clients, tuple(b.phone(i).ip for i in range(PHONES)))
        per = [addrs[i::PHONES] for i in range(PHONES)]
        allowed = []
        until = time.time() + 3600
        for i in range(PHONES):
            ph = b.phone(i)
            for a in per[i]:
                subprocess.run(["ip", "-n", f"{b.prefix}-ph{i}", "addr", "add", f"{a}/22", "dev", "eth0"],
                               check=True)
                allowed.append(AllowClient(ph.mac, a, until))
        b.gate().reconcile(allowed)
        b.popen(b.inet, [sys.executable, "-c", SERVER])
        logger_pid = None
        if design == "conntrack":
            (tmp / "ulogd.conf").write_text(ULOGD.format(tmp=tmp))
            proc = b.popen(rtr, ["ulogd", "-c", str(tmp / "ulogd.conf")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            logger_pid = proc.pid
            time.sleep(1.0)
            if proc.poll() is not None:
                raise SystemExit(f"ulogd2 did not start: {(tmp / 'ulogd.log').read_text()[-500:]}")
        time.sleep(1.0)
        j0, l0, t0 = busy_jiffies(), proc_jiffies(logger_pid) if logger_pid else 0, time.monotonic()
        loads = [b.popen(f"{b.prefix}-ph{i}", [sys.executable, "-c", LOAD, WAN_INET, str(cps / PHONES),
                                                 str(seconds), ",".join(per[i])],
                         stdout=subprocess.PIPE, text=True) for i in range(PHONES)]
        outs = [p.communicate(timeout=seconds + 60)[0].split() for p in loads]
        wall = time.monotonic() - t0
        j1 = busy_jiffies()
        # conntrack reaps an ended entry (and reports its end) only when its garbage collector passes: the logger's
        # CPU is counted until then, against the load's duration
        time.sleep(drain)
        l1 = proc_jiffies(logger_pid) if logger_pid else 0
        ok = sum(int(o[0]) for o in outs)
        failed = sum(int(o[1]) for o in outs)
        rate = ok / wall
        out: dict[str, Any] = {"design": design, "connections": ok, "failed": failed, "cps": round(rate, 1),
                               "seconds": round(wall, 1),
                               "machine_busy_pct": round(100 * (j1 - j0) / CLK / wall, 1),
                               "logger_cpu_pct": round(100 * (l1 - l0) / CLK / wall, 2)}
        if design == "conntrack":
            text = (tmp / "nat.log").read_text(errors="replace")
            lines = [ln for ln in text.splitlines() if "orig.ip.saddr" in ln]
            out["log_lines"] = len(lines)
            out["bytes_per_line"] = round(len(text.encode()) / max(1, len(text.splitlines())), 1)
            out["sample"] = lines[0][:400] if lines else ""
        return out


def synth(engine: sa.Engine, clients: int, days: int, start: datetime) -> int:
    """``days`` of ``clients`` one-session-a-day records (login and logout), chained, bulk-inserted."""
    lan = RouterConfig()
    addrs = client_addresses(lan, clients)
    rng = random.Random(7)
    prev, seq, batch = chain.GENESIS, 0, []
    sid = 0
    with engine.begin() as conn:
        for day in range(days):
            events = []
            for c in range(clients):
                t_in = start + timedelta(days=day, seconds=rng.uniform(8 * 3600, 20 * 3600))
                t_out = t_in + timedelta(seconds=rng.uniform(300, 3 * 3600))
                sid += 1
                events.append((t_in, "login", c, sid))
                events.append((t_out, "logout", c, sid))
            events.sort()
            for ts, event, c, s in events:
                seq += 1
                ip = addrs[c]
                lo, hi = portblock.block(lan.lan_cidr, ip) or (None, None)
                rec = {"ts": ts, "event": event, "store_id": "s1", "session_id": s, "member_id": c + 1,
                       "phone": f"+86138{c:08d}", "account": None, "mac": f"02:00:00:00:{c >> 8:02x}:{c & 255:02x}",
                       "ip": ip, "public_ip": "198.51.100.7", "port_lo": lo, "port_hi": hi,
                       "started_at": ts if event == "login" else None, "ended_at": ts if event == "logout" else None,
                       "detail": "sms" if event == "login" else None}
                h = chain.link(prev, seq, s, c + 1, chain.body(rec))
                batch.append({**rec, "seq": seq, "prev_hash": prev, "hash": h})
                prev = h
                if len(batch) >= 20000:
                    conn.execute(sa.insert(access_log), batch)
                    batch = []
        if batch:
            conn.execute(sa.insert(access_log), batch)
        conn.execute(sa.update(accesslog_head).values(seq=seq, prev_hash=batch[-1]["prev_hash"] if batch else prev,
                                                      hash=prev))
        conn.exec_driver_sql("ANALYZE access_log")
    return seq


def db_run(clients: int, days: int) -> dict[str, Any]:
    name = f"keliu_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.make_engine(f"{PG}/{name}")
    try:
        db.upgrade(engine)
        start = datetime(2026, 6, 1, tzinfo=UTC)
        t = time.perf_counter()
        n = synth(engine, clients, days, start)
        insert_s = time.perf_counter() - t
        with engine.connect() as conn:
            size = conn.exec_driver_sql("SELECT pg_total_relation_size('access_log')").scalar_one()
        bytes_per_record = size / n
        rng = random.Random(3)
        lan = RouterConfig()
        addrs = client_addresses(lan, clients)
        times, hits = [], 0
        with engine.connect() as conn:
            for _ in range(50):
                ip = rng.choice(addrs)
                lo, hi = portblock.block(lan.lan_cidr, ip) or (0, 0)
                at = start + timedelta(days=rng.uniform(0, days))
                t = time.perf_counter()
                found = store.who(conn, "198.51.100.7", rng.randint(lo, hi), at)
                times.append((time.perf_counter() - t) * 1000)
                hits += found is not None
        key = Path(tempfile.mkdtemp()) / "var"
        public = signing.signer(key).public
        walls, cpus = {}, {}
        for mode in (False, True):
            with engine.connect() as conn:
                backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                t, c, b = time.perf_counter(), time.process_time(), proc_jiffies(backend)
                report = store.verify(conn, public, in_database=mode)
                walls[mode] = time.perf_counter() - t
                # this process's CPU and its PostgreSQL backend's: what verify costs, whatever else runs
                cpus[mode] = time.process_time() - c + (proc_jiffies(backend) - b) / CLK
            assert report.ok and report.records == n, report.bad
        return {"records": n, "insert_s": round(insert_s, 1), "bytes_per_record": round(bytes_per_record, 1),
                "query_ms": round(statistics.median(times), 2), "query_ms_max": round(max(times), 2),
                "query_hits": hits, "verify_s": round(walls[False], 2),
                "verify_records_per_s": round(n / walls[False]),
                "verify_records_per_cpu_s": round(n / cpus[False]),
                "verify_in_database_records_per_s": round(n / walls[True]),
                "verify_in_database_records_per_cpu_s": round(n / cpus[True]),
                "load_average": os.getloadavg()[0]}
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cps", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--drain", type=float, default=20.0, help="seconds to wait for the last ends to be logged")
    ap.add_argument("--no-nat", action="store_true", help="skip the namespace part")
    ap.add_argument("--no-db", action="store_true", help="skip the query and verify part")
    args = ap.parse_args()
    result: dict[str, Any] = {"clients": args.clients, "cps_target": args.cps}
    if not args.no_nat:
        runs = {d: nat_run(d, args.cps, args.seconds, args.clients, args.drain)
                for d in ("baseline", "conntrack", "portblock")}
        for d, r in runs.items():
            print(d, json.dumps({k: v for k, v in r.items() if k != "sample"}))
        print("ulogd2 line:", runs["conntrack"].get("sample", ""))
        day_conns = args.cps * 86400
        ct = runs["conntrack"]
        result["baseline_machine_busy_pct"] = runs["baseline"]["machine_busy_pct"]
        for d in ("conntrack", "portblock"):
            r = runs[d]
            result[f"{d}_log_cpu_pct_per_100cps"] = round(r["logger_cpu_pct"] / (r["cps"] / 100), 3)
            result[f"{d}_machine_busy_pct_over_baseline_per_100cps"] = round(
                (r["machine_busy_pct"] - runs["baseline"]["machine_busy_pct"]) / (r["cps"] / 100), 2)
        # the flow hash writes exactly one line per connection; the share written before the run's end is shown
        result["conntrack_lines_logged_per_connection"] = round(ct["log_lines"] / max(1, ct["connections"]), 3)
        result["conntrack_log_mb_per_1000_clients_day"] = round(
            ct["bytes_per_line"] * day_conns * (1000 / args.clients) / 1e6, 1)
    if args.no_db:
        print(json.dumps(result))
        return
    d = db_run(args.clients, args.days)
    print("database", json.dumps(d))
    # port blocks: a login and a logout record per client and day, at the size PostgreSQL stores them
    result["portblock_log_mb_per_1000_clients_day"] = round(2 * 1000 * d["bytes_per_record"] / 1e6, 3)
    result.update(query_ms=d["query_ms"], query_ms_max=d["query_ms_max"], query_records=d["records"],
                  verify_records_per_s=d["verify_records_per_s"],
                  verify_records_per_cpu_s=d["verify_records_per_cpu_s"],
                  verify_in_database_records_per_s=d["verify_in_database_records_per_s"],
                  load_average=d["load_average"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
