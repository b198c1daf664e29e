"""Benchmark: the portal under a slow-client attack (issue 12, item 1), beside the server it replaced.

An attacker on the guest Wi-Fi holds ``--slow`` connections to the portal's port and as many to the captive front,
each from its own address (127.2.x.y and 127.3.x.y on loopback), each sending ``GET / HTTP/1.1\\r\\n`` and then
one header byte a second, never finishing; a connection the server cuts is opened again at once (a separate
process keeps them). Meanwhile, and before the attack for comparison:

- ``login``: ``--logins`` shoppers log in one after another, each from its own phone (127.4.0.x): ask for the SMS
  code (``POST /api/login/sms/code``, the code read from the console backend's output), then
  ``POST /api/login/sms/verify``. Reported: how many completed within 10 s each, and their p50 and max.
- ``probe``: 500 distinct phones probe the captive front, open loop at ``--probe-rate`` (bench/portal.py's
  ``phones_open_loop``: latency from each probe's scheduled time). Reported: p50 and p99.

Servers, each a real ``keliu portal`` (2 workers, SQLite, the captive front beside it):

- ``loop``: today's, gunicorn with ``portal.serve.worker.LoopWorker`` (an event loop reads requests within
  ``[portal] head_timeout_s``; threads see complete requests only);
- ``gthread`` (the baseline): the same app and settings with gunicorn's ``gthread`` worker, as before issue 12.

Target: under the attack the shoppers' logins all complete and the probes keep their p99 (within the noise of this
shared machine). The last line is one JSON object.
Usage: ``.venv/bin/python bench/slow_clients.py [--slow N] [--logins N] [--duration S] [--probe-rate R]``.
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("bench_portal", ROOT / "bench" / "portal.py")
assert _spec is not None and _spec.loader is not None
bench_portal = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_portal)

#: the baseline server: the portal's own gunicorn application with gunicorn's gthread worker class
GTHREAD = """
from portal.serve import server
class Gthread(server.PortalServer):
    def load_config(self):
        super().load_config()
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("keepalive", 5)
server.PortalServer = Gthread
server.serve(None, None)
"""

#: the attacker: holds N slow connections to each port, reopening the ones the server cuts
SLOWLORIS = """
import asyncio, sys, uvloop
N, PORTS = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
async def one(port, src):
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
            writer.write(b"GET / HTTP/1.1\\r\\n")
            while True:
                await asyncio.sleep(1)
                writer.write(b"X")
                await writer.drain()
                if reader.at_eof():
                    break
        except OSError:
            pass
        await asyncio.sleep(0.1)
async def main():
    tasks = [one(port, f"127.{2 + k}.{1 + i // 250}.{1 + i % 250}") for k, port in enumerate(PORTS) for i in range(N)]
    await asyncio.gather(*tasks)
uvloop.run(main())
"""


def start(tmp: Path, name: str, port: int, front_port: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env.update({"KELIU_DATABASE_URL": f"sqlite:///{tmp / (name + '.db')}", "KELIU_VAR_DIR": str(tmp / "var"),
                "KELIU_PORTAL_PORT": str(port), "KELIU_PORTAL_CAPTIVE_PORT": str(front_port),
                "KELIU_PORTAL_PUBLIC_URL": f"http://127.0.0.1:{port}", "PYTHONPATH": str(ROOT)})
    argv = [sys.executable, "-c", GTHREAD] if name == "gthread" else [sys.executable, "-m", "keliu.cli", "portal"]
    log = tmp / f"{name}.log"
    proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    bench_portal.wait_listening(port, proc)
    bench_portal.wait_listening(front_port, proc)
    return proc, log


def post(port: int, source: str, path: str, body: dict[str, object], timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def logins(port: int, log: Path, first: int, count: int) -> dict[str, float]:
    """``count`` shoppers log in one after another, each from its own phone; seconds each, or a failure."""
    took: list[float] = []
    failed = 0
    for n in range(first, first + count):
        number, source = f"139{n:08d}", f"127.4.{n // 250}.{1 + n % 250}"
        started = time.monotonic()
        try:
            status, _ = post(port, source, "/api/login/sms/code", {"phone": number}, 10)
            if status != 202:
                raise OSError(f"code: {status}")
            masked = re.escape(f"{number[:3]}****{number[-4:]}")
            while not (m := re.search(masked + r" code (\d{6})", log.read_text())):
                if time.monotonic() - started > 10:
                    raise OSError("no code")
                time.sleep(0.02)
            status, body = post(port, source, "/api/login/sms/verify",
                                {"phone": number, "code": m.group(1), "consents": {"terms": True}},
                                10 - (time.monotonic() - started))
            if status != 200 or not json.loads(body)["online"]:
                raise OSError(f"verify: {status}")
            took.append(time.monotonic() - started)
        except (OSError, TimeoutError):
            failed += 1
    took.sort()
    return {"completed": len(took), "failed": failed,
            "p50_ms": took[len(took) // 2] * 1000 if took else float("nan"),
            "max_ms": took[-1] * 1000 if took else float("nan")}


def measure(port: int, front_port: int, log: Path, first: int, args: argparse.Namespace) -> dict[str, object]:
    login = logins(port, log, first, args.logins)
    probe = bench_portal.phones_open_loop(front_port, 500, args.probe_rate, args.duration)
    return {"login": login, "probe": {"p50_ms": probe["p50_ms"], "p99_ms": probe["p99_ms"], "rps": probe["rps"]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=500, help="slow connections to each of the two ports")
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--duration", type=int, default=10, help="seconds of probes per measurement")
    parser.add_argument("--probe-rate", type=float, default=1000.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keliu-bench-slow-"))
    (tmp / "var").mkdir()
    out: dict[str, object] = {}
    for i, name in enumerate(("loop", "gthread")):
        port, front_port = bench_portal.free_port(), bench_portal.free_port()
        proc, log = start(tmp, name, port, front_port)
        try:
            print(f"== {name}: quiet", flush=True)
            quiet = measure(port, front_port, log, 1000 * i, args)
            print(f"   {quiet}", flush=True)
            attacker = subprocess.Popen([sys.executable, "-c", SLOWLORIS, str(args.slow), str(port), str(front_port)],
                                        start_new_session=True)
            try:
                time.sleep(3)  # every slow connection open and started
                print(f"== {name}: under {args.slow} + {args.slow} slow connections", flush=True)
                attacked = measure(port, front_port, log, 1000 * i + 500, args)
                print(f"   {attacked}", flush=True)
            finally:
                bench_portal.stop(attacker)
        finally:
            bench_portal.stop(proc)
        out[name] = {"quiet": quiet, "attacked": attacked}
    loop, base = out["loop"], out["gthread"]
    assert isinstance(loop, dict) and isinstance(base, dict)
    print(f"logins completed under attack: loop {loop['attacked']['login']['completed']}/{args.logins}, "
          f"gthread (baseline) {base['attacked']['login']['completed']}/{args.logins}")
    print(f"front probe p99 quiet → attacked: loop {loop['quiet']['probe']['p99_ms']:.1f} → "
          f"{loop['attacked']['probe']['p99_ms']:.1f} ms")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
