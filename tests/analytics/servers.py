"""Real servers for tests, started on free loopback ports with temporary directories (plain functions, importable
by any test package — the dashboards' tests use them too).

    victoria_metrics(tmp) -> base URL   Debian's victoria-metrics: speaks /api/v2/write (influxdb-client) and
                                        PromQL/export for reading back
    influxdb1(tmp) -> base URL          Debian's influxd 1.x: /write and InfluxQL on /query
    celery_worker(env, name, log)       ``keliu analytics worker`` as a subprocess in its own process group;
                                        ``.kill()`` is kill -9 of the whole group; stopped at exit

Each is a context manager that stops what it started (and only that) when the block ends. A missing binary skips
the test (or fails it under KELIU_REQUIRE_SERVICES=1), through ``tests.conftest.require``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.conftest import require

VICTORIA = "/usr/bin/victoria-metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"no answer from {url} within {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def victoria_metrics(tmp: Path) -> Iterator[str]:
    """A VictoriaMetrics single-node server; yields ``http://127.0.0.1:<port>``. Retention is 100 years so that
    points of any test date are kept."""
    require(os.path.exists(VICTORIA), "victoria-metrics is not installed (Debian package victoria-metrics)")
    port = free_port()
    data = tmp / "vm-data"
    data.mkdir(parents=True, exist_ok=True)
    with open(tmp / "vm.log", "wb") as log:
        proc = subprocess.Popen([VICTORIA, f"-storageDataPath={data}", f"-httpListenAddr=127.0.0.1:{port}",
                                 "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/health", proc=proc)
            yield base
        finally:
            _stop(proc)


@contextlib.contextmanager
def influxdb1(tmp: Path) -> Iterator[str]:
    """An InfluxDB 1.x server (Debian's ``influxd``) with its own config and directories; yields its base URL."""
    influxd = shutil.which("influxd") or "/usr/bin/influxd"
    require(os.path.exists(influxd), "influxd is not installed (Debian package influxdb)")
    port, rpc = free_port(), free_port()
    root = tmp / "influxdb"
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "influxdb.conf"
    conf.write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root / 'meta'}"
[data]
  dir = "{root / 'data'}"
  wal-dir = "{root / 'wal'}"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""")
    with open(root / "influxd.log", "wb") as log:
        proc = subprocess.Popen([influxd, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/ping", proc=proc)
            yield base
        finally:
            _stop(proc)


class Worker:
    """A ``keliu analytics worker`` subprocess (its own process group)."""

    def __init__(self, env: Mapping[str, str], name: str, log: Path, concurrency: int = 1,
                 queues: str | None = None) -> None:
        self.name = name
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - held for the worker's life, closed by stop()
        argv = [sys.executable, "-m", "keliu.cli", "analytics", "worker", "-n", name, "-c", str(concurrency),
                "--loglevel", "INFO"] + (["--queues", queues] if queues else [])
        self.proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: {self.log_path.read_text(errors='replace')[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.name} not ready: {self.log_path.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """kill -9 the worker and its pool processes, mid-task or not."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        _stop(self.proc)
        self._log.close()


@contextlib.contextmanager
def celery_worker(env: Mapping[str, str], name: str, log: Path, concurrency: int = 1, queues: str | None = None,
                  ready: bool = True) -> Iterator[Worker]:
    w = Worker(env, name, log, concurrency, queues)
    try:
        if ready:
            w.wait_ready()
        yield w
    finally:
        w.stop()
