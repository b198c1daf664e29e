"""Serving the portal with gunicorn (an edge: processes, sockets, signals).

Each worker is a :class:`portal.serve.worker.LoopWorker`: an event loop reads every connection within the request
limits of ``[portal]`` and only complete requests reach the app's threads. The app is built once in the master (``preload_app``: migrations, tenant sync, Gate reconcile), then workers fork;
each worker drops the inherited database pool and netlink socket. The master also runs the session sweeper
thread and supervises (restarts, stops with itself) two children: the captive front (:mod:`portal.serve.front`) on
``captive_port`` when it is not 0, and, when a certificate is configured, a second gunicorn serving the same app
over HTTPS on ``https_port`` (gunicorn has one TLS setting for all its listeners) for the RFC 8908 API.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from keliu import config, console

if TYPE_CHECKING:
    from flask import Flask

# The app (portal.app and what it imports: most of a process's start on a router's CPU) is imported where it is
# used, after the master has started its listener children: they import it at the same time (Child).

log = logging.getLogger("keliu.portal")


class PortalServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, overrides: dict[str, Any], listener: str) -> None:
        self.overrides = overrides
        self.listener = listener
        self.app: Flask | None = None
        self.children: list[Child] = []
        super().__init__()

    def load_config(self) -> None:

        cfg = config.load(overrides=self.overrides)
        p = cfg.portal
        https = self.listener == "https"
        port = p.https_port if https else p.port
        opts: dict[str, Any] = {
            "bind": [f"{p.host}:{port}"],
            "workers": 1 if https else p.workers,
            # an event loop reads requests and a few threads run the app (gthread gave a thread to each
            # half-sent request: two dozen phones froze the portal)
            "worker_class": "portal.serve.worker.LoopWorker",
            "threads": p.threads,
            "worker_connections": 4096,
            "backlog": 2048,
            "preload_app": True,
            "timeout": 30,
            "graceful_timeout": 5,
            "accesslog": None,
            # quiet by default (keliu -v portal: gunicorn's start-up and worker lines)
            "loglevel": "info" if console.verbosity() else "warning",
            "proc_name": f"keliu-portal-{self.listener}",
            "post_fork": _post_fork,
            "when_ready": self._when_ready,
            "on_exit": self._on_exit,
        }
        if https:
            opts["certfile"], opts["keyfile"] = p.https_cert, p.https_key
        for key, value in opts.items():
            self.cfg.set(key, value)
        self.kcfg = cfg

    def load(self) -> Flask:
        if self.app is None:
            from portal.app import create_app, start_up

            self.app = create_app({"KELIU": self.overrides})
            if self.listener == "http":
                # the master, before its workers serve; the HTTPS listener starts later and must not reconcile
                start_up(self.app)
        return self.app

    def start_children(self) -> None:
        """Start the listener children before the master builds its app: they import the portal while it does (a
        process's imports are most of its start on a router's CPU), then wait for :meth:`_when_ready` to let them
        build theirs (the master's start-up migrates and reconciles first)."""
        listeners = ["captive"] if self.kcfg.portal.captive_port else []
        if self.kcfg.portal.https_cert:
            listeners.append("https")
        for listener in listeners:
            argv = [sys.executable, "-m", "keliu.cli", *console.argv(), "portal", "--listener", listener, "--after-master"]
            # the same overrides: the children's public_url (the splash they redirect to) follows host and port
            for key in ("host", "port"):
                if key in self.overrides.get("portal", {}):
                    argv += [f"--{key}", str(getattr(self.kcfg.portal, key))]
            self.children.append(Child(listener, argv))

    def _when_ready(self, _server: Any) -> None:
        if self.listener != "http":
            return
        assert self.app is not None
        threading.Thread(target=_sweeper, args=(self.app,), name="keliu-sweeper", daemon=True).start()
        for child in self.children:
            child.release()

    def _on_exit(self, _server: Any) -> None:
        for child in self.children:
            child.stop()


class Child:
    """A listener process of the portal, restarted when it dies (at most once a second), stopped with the master.

    It starts held: it builds its app only once :meth:`release` wrote a line to its stdin (EOF instead: the master
    died first, and the child exits). A child restarted after the release is released at once."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self._stopping = threading.Event()
        self._released = False
        self._lock = threading.Lock()  # a restart and a stop never interleave: no child outlives the master
        self.proc = self._spawn()
        threading.Thread(target=self._watch, name=f"keliu-{name}", daemon=True).start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE)
        if self._released:
            _go(proc)
        return proc

    def release(self) -> None:
        with self._lock:
            self._released = True
            _go(self.proc)

    def _watch(self) -> None:
        while True:
            started = time.monotonic()
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            log.error("portal %s listener exited with %s; restarting it", self.name, code)
            if self._stopping.wait(max(0.0, 1.0 - (time.monotonic() - started))):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _go(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except OSError:  # it died already: its watcher starts a new one, released
        pass


def wait_for_master() -> bool:
    """In a listener child (``--after-master``): block until the master releases it (True) or dies (False)."""
    return sys.stdin.buffer.readline() == b"go\n"


def _post_fork(_server: Any, _worker: Any) -> None:
    from portal.services import services

    app = _APP_REF[0]
    if app is None:
        return
    with app.app_context():
        svc = services()
        svc.engine.dispose(close=False)
        reset = getattr(svc.neighbours, "reset_after_fork", None)
        if reset is not None:
            reset()


_APP_REF: list[Flask | None] = [None]


def _sweeper(app: Flask) -> None:
    from portal.services import services
    from portal.store import access

    with app.app_context():
        svc = services()
        stop = threading.Event()
        while not stop.wait(svc.cfg.portal.sweep_s):
            try:
                ended = access.sweep(svc, svc.now())
            except Exception:  # the sweeper must survive a database hiccup; logged with its traceback
                log.exception("session sweep failed")
                continue
            if ended:
                log.info("sweep: %d decisions", len(ended))


def serve(host: str | None, port: int | None, listener: str = "http", after_master: bool = False) -> None:
    overrides: dict[str, Any] = {}
    portal: dict[str, Any] = {}
    if host is not None:
        portal["host"] = host
    if port is not None:
        portal["port"] = port
    if portal:
        overrides["portal"] = portal
    # Validate the configuration here, before gunicorn: inside its load_config a ConfigError became gunicorn's own
    # "Error: …" and exit status 1 (systemd restarted it forever); here it is keliu's one line and status 2.
    cfg = config.load(overrides=overrides)
    cfg.store(cfg.portal.store)
    if after_master and not wait_for_master():
        return
    if listener == "captive":
        from portal.serve.front import run

        run(overrides)
        return
    server = PortalServer(overrides, listener)
    if listener == "http":
        server.start_children()
    try:
        _APP_REF[0] = server.load()
    except BaseException:
        server._on_exit(None)
        raise
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    server.run()
