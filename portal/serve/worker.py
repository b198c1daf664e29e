"""The portal's gunicorn worker: one event loop reads requests, a few threads run the app (an edge: sockets,
threads, signals).

Why not gunicorn's ``gthread``: it hands a connection to a thread as soon as the connection is readable, and the
thread then blocks reading the rest of the head. About 24 phones sending ``GET / HTTP/1.1\\r\\n`` and nothing more
held every thread of both workers, and the splash, the login, the API and the dashboard stopped answering.

Here a thread only ever sees a *complete* request. The loop (uvloop) reads every connection through the sans-io
:class:`portal.serve.http11.Http11`, which bounds the time for a head (``[portal] head_timeout_s``) and a body
(``body_timeout_s``), the sizes, and the wait for a first byte (``keepalive_s``); :class:`portal.serve.http11.ClientCap`
bounds the connections one address holds (``client_connections``). Idle and slow sockets then cost a few
kilobytes each and no thread. The app's answer is collected whole in the thread (the portal's pages are small)
and written by the loop; a client that does not read it within ``body_timeout_s`` is cut.

Per connection, requests are answered one at a time in arrival order (pipelining), like gunicorn's.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn.workers.base import Worker

from portal.serve import transports
from portal.serve.http11 import (
    CLOSE,
    ClientCap,
    Continue,
    DateHeader,
    Http11,
    Limits,
    Refusal,
    Request,
    State,
)

log = logging.getLogger("keliu.portal.worker")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: header fields the app may not set: the server frames the answer
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "upgrade"})
_NO_BODY = (b"1", b"204", b"304")


def environ(req: Request, peer: tuple[str, int], local: tuple[str, int], scheme: str) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of a complete request."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(req.path).decode("latin-1"),
        "QUERY_STRING": req.query.decode("latin-1"),
        "RAW_URI": req.target.decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{req.version}",
        "SERVER_NAME": local[0],
        "SERVER_PORT": str(local[1]),
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if req.body or req.method in ("POST", "PUT", "PATCH"):
        env["CONTENT_LENGTH"] = str(len(req.body))  # the body is complete, chunked or not
    for raw_name, raw_value in req.headers:
        name = raw_name.decode("latin-1").upper()
        if "_" in name:
            # X_Forwarded_For and X-Forwarded-For would both become HTTP_X_FORWARDED_FOR: drop the ambiguous one
            continue
        value = raw_value.decode("latin-1")
        if name == "CONTENT-TYPE":
            env["CONTENT_TYPE"] = value
            continue
        if name == "CONTENT-LENGTH":
            continue
        key = "HTTP_" + name.replace("-", "_")
        env[key] = f"{env[key]},{value}" if key in env else value
    return env


def run_app(app: Wsgi, env: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """Run the app on one request (in a thread): its status line, header fields and whole body."""
    started: list[Any] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started and chunks:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return chunks.append

    result = app(env, start_response)
    try:
        for chunk in result:
            if chunk:
                chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the app returned without calling start_response")
    status, headers = started
    return status.encode("latin-1"), headers, b"".join(chunks)


def _plain(status: int, reason: str, text: str) -> tuple[bytes, list[tuple[str, str]], bytes]:
    return (f"{status} {reason}".encode("ascii"),
            [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
            (text + "\n").encode())


ERROR = _plain(500, "Internal Server Error", "internal error")
BUSY = _plain(503, "Service Unavailable", "the portal is busy, try again in a moment")


class Server:
    """The state one worker process shares between its connections."""

    PENDING = 1024

    def __init__(self, app: Wsgi, limits: Limits, threads: int, client_connections: int,
                 max_connections: int, scheme: str = "http", clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.limits = limits
        self.scheme = scheme
        self.clock = clock
        self.clients = ClientCap(client_connections)
        self.max_connections = max_connections
        #: requests waiting for or in a thread beyond this are answered 503 (memory stays bounded: each holds its
        #: body). Each connection has at most one request waiting, so only more than this many busy connections
        #: in one worker reach it (256 a worker answered 503s to a 500-connection load split unevenly over two)
        self.max_pending = self.PENDING
        self.pending = 0
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="keliu-portal")
        self.connections: set[Connection] = set()
        self.counts: dict[str, int] = {}
        self._date = DateHeader()

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def date(self) -> bytes:
        return self._date.line(time.time())

    def sweep(self) -> None:
        """Apply every connection's deadline (called a few times a second)."""
        now = self.clock()
        for conn in list(self.connections):
            conn.expire(now)

    async def handle(self, req: Request, peer: tuple[str, int], local: tuple[str, int]) -> tuple[
            bytes, list[tuple[str, str]], bytes]:
        if self.pending >= self.max_pending:
            self.count("busy")
            return BUSY
        self.pending += 1
        try:
            env = environ(req, peer, local, self.scheme)
            return await asyncio.get_running_loop().run_in_executor(self.pool, run_app, self.app, env)
        except Exception:  # the app's bug: logged with its traceback; the client gets a plain 500
            log.exception("error handling %s %s", req.method, req.target[:200].decode("latin-1"))
            return ERROR
        finally:
            self.pending -= 1


class Connection(asyncio.Protocol):
    """One client socket: bytes into :class:`Http11`, complete requests to the app, answers out in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.core = Http11(server.limits, server.clock())
        self.transport: Any = None
        self.peer: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.queue: deque[Request | Refusal] = deque()
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.admitted = False
        #: when the client stopped reading what we wrote (the write buffer is full), else None
        self.stalled_at: float | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: Any) -> None:  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = (peer[0], peer[1]) if peer else ("", 0)
        self.local = (local[0], local[1]) if local else ("", 0)
        server = self.server
        if len(server.connections) >= server.max_connections:
            server.count("refused_full")
            transport.abort()
            return
        if not server.clients.admit(self.peer[0]):
            server.count("refused_client_cap")
            transport.abort()
            return
        self.admitted = True
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.queue.clear()
        self.server.connections.discard(self)
        if self.admitted:
            self.admitted = False
            self.server.clients.leave(self.peer[0])

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        for event in self.core.feed(data, self.server.clock()):
            if isinstance(event, Continue):
                if not self.queue and self.task is None:  # only when no earlier answer is still to come
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                continue
            self.queue.append(event)
        if self.core.state is State.DONE or len(self.queue) > 16:
            self.transport.pause_reading()  # nothing more to read, or enough waiting: the client waits
        self._pump()

    def pause_writing(self) -> None:
        self.stalled_at = self.server.clock()

    def resume_writing(self) -> None:
        self.stalled_at = None

    # -- answering

    def _pump(self) -> None:
        if self.task is None and self.queue and not self.closing:
            self.task = asyncio.get_running_loop().create_task(self._answer_all())

    async def _answer_all(self) -> None:
        try:
            while self.queue and not self.closing:
                item = self.queue.popleft()
                if isinstance(item, Refusal):
                    self.server.count(f"refused_{item.status}")
                    self._write("GET", _plain(item.status, item.reason, item.text), keep=False)
                    self.close(linger=True)
                    return
                answer = await self.server.handle(item, self.peer, self.local)
                if self.closing:
                    return
                keep = item.keep_alive and not (self.core.state is State.DONE and not self.queue)
                # the idle clock starts before the answer leaves: a client that reads it must find it started
                self.core.answered(self.server.clock())
                self._write(item.method, answer, keep)
                if not keep:
                    self.close(linger=item.upgrade)
                    return
                if not self.queue and self.core.state is not State.DONE:
                    self.transport.resume_reading()
        finally:
            self.task = None

    def _write(self, method: str, answer: tuple[bytes, list[tuple[str, str]], bytes], keep: bool) -> None:
        status, headers, body = answer
        lines = [b"HTTP/1.1 ", status, b"\r\n", self.server.date()]
        for name, value in headers:
            if name.lower() not in _HOP:
                lines += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
        if not status.startswith(_NO_BODY):
            lines.append(b"Content-Length: %d\r\n" % len(body))
        if not keep:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        if method != "HEAD" and not status.startswith(_NO_BODY):
            lines.append(body)
        self.transport.write(b"".join(lines))

    def expire(self, now: float) -> None:
        if self.closing:
            return
        if self.stalled_at is not None and now - self.stalled_at >= self.server.limits.body_s:
            self.server.count("cut_slow_reader")
            self.transport.abort()
            return
        verdict = self.core.expire(now)
        if verdict == CLOSE:
            self.server.count("closed_idle")
            self.close()
        elif isinstance(verdict, Refusal):
            self.queue.append(verdict)
            self.transport.pause_reading()
            self._pump()

    def close(self, linger: bool = False) -> None:
        """Close, lingering if the client may still be sending (:func:`portal.serve.transports.close`)."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.queue.clear()
        transports.close(self.transport, linger)


class LoopWorker(Worker):  # type: ignore[misc]
    """gunicorn worker class ``portal.serve.worker.LoopWorker``; the app is :class:`portal.serve.server.PortalServer`."""

    def run(self) -> None:
        import uvloop

        # the app's threads hand the GIL back to the loop after 1 ms instead of 5 ms (as in the captive front)
        sys.setswitchinterval(0.001)
        uvloop.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        p = self.app.kcfg.portal
        server = Server(self.wsgi, limits_of(p), threads=self.cfg.threads,
                        client_connections=p.client_connections, max_connections=self.cfg.worker_connections,
                        scheme="https" if self.cfg.is_ssl else "http")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, self._stop)
        ssl_ctx = None
        if self.cfg.is_ssl:
            from gunicorn.sock import ssl_context

            ssl_ctx = ssl_context(self.cfg)
        listeners = []
        for listener in self.sockets:
            listeners.append(await loop.create_server(
                lambda: Connection(server), sock=listener.sock, backlog=self.cfg.backlog, ssl=ssl_ctx,
                ssl_handshake_timeout=server.limits.head_s if ssl_ctx else None))
        tick = min(0.5, self.timeout / 4) if self.timeout else 0.5
        try:
            while self.alive:
                self.notify()
                if os.getppid() != self.ppid:
                    log.info("portal worker %s: the master is gone; stopping", self.pid)
                    break
                server.sweep()
                await asyncio.sleep(tick)
        finally:
            for lst in listeners:
                lst.close()
            deadline = time.monotonic() + self.cfg.graceful_timeout
            while server.pending and time.monotonic() < deadline:
                self.notify()
                await asyncio.sleep(0.05)
            for conn in list(server.connections):
                conn.close()
                if conn.transport is not None:  # a lingering one too
                    conn.transport.close()
            server.pool.shutdown(wait=False, cancel_futures=True)
            if server.counts:
                log.info("portal worker %s stopped: %s", self.pid, server.counts)

    def _stop(self) -> None:
        self.alive = False


def limits_of(p: Any) -> Limits:
    """The request limits of the ``[portal]`` section (both listeners use them)."""
    return Limits(idle_s=p.keepalive_s, head_s=p.head_timeout_s, body_s=p.body_timeout_s,
                  max_body=p.max_body)
