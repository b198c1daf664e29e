"""The captive front: an event-loop HTTP/1.1 server on the port the router DNATs a captive phone's port 80 to
(an edge: sockets, threads).

Why a second server: every phone that joins the guest Wi-Fi fires its OS probes, and a mall's worth of phones
does so at once. Through gunicorn each probe costs a worker thread, a WSGI environ and ~0.4 ms of CPU; here an
answer already known is a dict read and one ``write`` from the event loop (uvloop, the llhttp parser of
httptools), so the probe storm never queues behind itself, and the splash, the login and the API keep gunicorn to
themselves (the router sends only the portal's own address there).

What is answered where:

- in the loop, at once: a probe (or an asset, or anything but a GET) from an address this process found captive
  less than ``memo_s`` ago, or whose lookup is running: the prebuilt 302 to the splash;
- in a thread (``threads``): everything else goes through :meth:`portal.captive.Interceptor.answer`, the same
  code gunicorn's middleware runs (one SQL round trip; heal, re-authorization, the landing URL);
- when more than ``max_pending`` such lookups wait, the captive answer without a lookup (fail closed: a phone
  under a storm is sent to the splash, which decides properly).

The memo is keyed by the source address, not the device: it only ever yields the captive answer, so an address
that changed hands can be kept captive for at most ``memo_s`` (a logged-in phone's new connections do not come
here at all: the router stops DNATing them).

Per connection the answers go out in request order (HTTP/1.1 pipelining); a connection closes after an answer
that says so (to an authorized client), after HTTP/1.0, on a malformed request (400), an oversized head (431) or
body (413), and when idle for ``keepalive_s``.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from portal.captive import Foreign, Interceptor, Prebuilt, remembers_landing
from portal.detect import classify

log = logging.getLogger("keliu.portal.front")


@dataclass(frozen=True)
class FrontConfig:
    #: seconds an address found captive is answered from memory (probes)
    memo_s: float = 1.0
    #: threads for the lookups that need the database
    threads: int = 8
    #: lookups waiting beyond this are answered captive without one (shed load, fail closed)
    max_pending: int = 256
    keepalive_s: float = 15.0
    #: request line + headers; a request body is read and dropped, up to this
    max_head: int = 16 * 1024
    max_body: int = 1024 * 1024
    max_connections: int = 10000


def _plain(status: str, text: str) -> Prebuilt:
    from werkzeug.wrappers import Response

    resp = Response(text + "\n", status, content_type="text/plain; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Connection"] = "close"
    return Prebuilt(resp)


BAD_REQUEST = _plain("400 BAD REQUEST", "malformed HTTP request")
HEAD_TOO_LARGE = _plain("431 REQUEST HEADER FIELDS TOO LARGE", "request head too large")
BODY_TOO_LARGE = _plain("413 REQUEST ENTITY TOO LARGE", "request body too large")


class Front:
    """The decisions and shared state of one front process; :class:`Connection` is its per-socket protocol."""

    def __init__(self, interceptor: Interceptor, cfg: FrontConfig | None = None,
                 clock: Any = time.monotonic) -> None:
        self.interceptor = interceptor
        self.cfg = cfg or FrontConfig()
        self.clock = clock
        self.captive = interceptor.captive
        #: source address → monotonic time until which it is known captive
        self.memo: dict[str, float] = {}
        #: source address → its lookups running
        self.looking: dict[str, int] = {}
        self.pending = 0
        self.connections: set[Connection] = set()
        self.pool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="keliu-front")
        self.counts = collections.Counter[str]()
        self._jitter = random.Random()
        self._date_at = 0
        self._date = b""

    # -- decisions

    def quick(self, req: Foreign) -> Prebuilt | None:
        """The answer known without a lookup, or None. A page (a GET, not a probe, not an asset) is always looked
        up: the lookup also keeps it as the landing URL."""
        if classify(req.host, req.path) is None and remembers_landing(req):
            return None
        ip = req.remote_addr
        if ip in self.looking:
            # the address's lookup is running: captive meanwhile (its phone reached the DNAT port: the router
            # does not know it as logged in), instead of a storm of identical lookups
            self.counts["joined"] += 1
            return self.captive
        until = self.memo.get(ip)
        if until is not None and until > self.clock():
            self.counts["memo"] += 1
            return self.captive
        return None

    def lookup(self, req: Foreign) -> asyncio.Future[Prebuilt] | Prebuilt:
        if self.pending >= self.cfg.max_pending:
            self.counts["shed"] += 1
            return self.captive
        self.pending += 1
        self.looking[req.remote_addr] = self.looking.get(req.remote_addr, 0) + 1
        self.counts["lookup"] += 1
        fut = asyncio.get_running_loop().run_in_executor(self.pool, self._answer, req)
        fut.add_done_callback(functools.partial(self._looked_up, req.remote_addr))
        return fut

    def _answer(self, req: Foreign) -> Prebuilt:
        try:
            return self.interceptor.answer(req)
        except Exception:  # a bug or an edge (Gate, netlink) failing: logged, and the phone stays captive
            log.exception("captive lookup failed")
            return self.captive

    def _looked_up(self, ip: str, fut: asyncio.Future[Prebuilt]) -> None:
        """In the loop: one lookup less waiting; a captive address is remembered."""
        self.pending -= 1
        if self.looking[ip] > 1:
            self.looking[ip] -= 1
        else:
            del self.looking[ip]
        if not fut.cancelled() and fut.exception() is None and fut.result() is self.captive:
            # ±25 %: phones that joined in one storm would otherwise all be looked up again in the same instant
            self.memo[ip] = self.clock() + self.cfg.memo_s * (0.75 + 0.5 * self._jitter.random())
        else:
            self.memo.pop(ip, None)

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._date_at:
            self._date_at, self._date = now, f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")
        return self._date

    # -- housekeeping

    def sweep(self) -> None:
        """Close idle connections and forget expired memo entries (called every few seconds)."""
        now = self.clock()
        for conn in list(self.connections):
            if not conn.busy and now - conn.active_at > self.cfg.keepalive_s:
                conn.close()
        for ip in [ip for ip, until in self.memo.items() if until <= now]:
            del self.memo[ip]


class Connection(asyncio.Protocol):
    """One client socket: llhttp parses, answers leave in request order."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        #: (request or a fixed error answer, keep-alive) in arrival order
        self.queue: collections.deque[tuple[Foreign | Prebuilt, bool]] = collections.deque()
        self.busy = False  # a lookup for the head of the queue is running
        self.closing = False  # the transport is (being) closed
        self.closing_after = False  # nothing more is read: close after the queued answers
        self.writable = True
        self.paused = False
        self.active_at = front.clock()
        self._url: list[bytes] = []
        self._host = b""
        self._head = 0
        self._body = 0
        self._error: Prebuilt | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: Any) -> None:  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        if len(self.front.connections) >= self.front.cfg.max_connections:
            self.front.counts["refused"] += 1
            transport.abort()
            return
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        self.closing = True
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        self.active_at = self.front.clock()
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # an Upgrade (websocket, h2c) to a foreign host: answered like any request, then the connection ends
            self._done_reading()
        except httptools.HttpParserError:
            self._error = self._error or BAD_REQUEST
        if self._error is not None:
            self.front.counts["bad"] += 1
            self.queue.append((self._error, False))
            self._done_reading()
        self._pump()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self._pump()

    # -- llhttp callbacks

    def on_message_begin(self) -> None:
        self._url.clear()
        self._host = b""
        self._head = 0
        self._body = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value))
        if len(name) == 4 and name.lower() == b"host":
            self._host = value

    def on_body(self, body: bytes) -> None:
        self._body += len(body)
        if self._body > self.front.cfg.max_body and self._error is None:
            self._error = BODY_TOO_LARGE
            raise httptools.HttpParserError("body too large")

    def on_message_complete(self) -> None:
        url = httptools.parse_url(b"".join(self._url))
        raw_path = url.path or b"/"
        path = "/" + unquote_to_bytes(raw_path).decode("utf-8", "replace").lstrip("/")
        method = self.parser.get_method().decode("ascii", "replace")
        keep = self.parser.should_keep_alive() and self.parser.get_http_version() == "1.1"
        req = Foreign(method=method, host=self._host.decode("latin-1"), path=path, query=url.query or b"",
                      remote_addr=self.peer)
        self.queue.append((req, keep))
        if not keep:
            self._done_reading()
        elif len(self.queue) > 32 and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def _grow(self, n: int) -> None:
        self._head += n
        if self._head > self.front.cfg.max_head and self._error is None:
            self._error = HEAD_TOO_LARGE
            raise httptools.HttpParserError("head too large")

    # -- answering

    def _done_reading(self) -> None:
        """No further request is read from this connection: answer what is queued, then close."""
        self.closing_after = True
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def _pump(self) -> None:
        front = self.front
        while self.queue and not self.busy and self.writable and not self.closing:
            req, keep = self.queue[0]
            if isinstance(req, Prebuilt):
                self.queue.popleft()
                self._write("GET", False, req)
                continue
            answer = front.quick(req) or front.lookup(req)
            if isinstance(answer, Prebuilt):
                self.queue.popleft()
                self._write(req.method, keep, answer)
                continue
            self.busy = True
            answer.add_done_callback(self._answered)
            return
        if self.paused and not self.closing_after and len(self.queue) < 8 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def _answered(self, fut: asyncio.Future[Prebuilt]) -> None:
        self.busy = False
        if self.closing or not self.queue or fut.cancelled():
            return
        req, keep = self.queue.popleft()
        assert isinstance(req, Foreign)
        self._write(req.method, keep, fut.result())
        self._pump()

    def _write(self, method: str, keep: bool, answer: Prebuilt) -> None:
        assert self.transport is not None
        last = answer.closes or not keep or (self.closing_after and not self.queue)
        status, rest = answer.wire(method == "HEAD", last)
        self.transport.write(b"".join((status, self.front.date(), rest)))
        self.active_at = self.front.clock()
        if last:
            self.close(linger=self.closing_after)

    #: seconds a refused connection is still read (and dropped) after its answer
    LINGER_S = 2.0

    def close(self, linger: bool = False) -> None:
        """Close; with ``linger`` (the client may still be sending: a refused body, an upgrade) half-close, then
        drop what arrives until the client closes or ``LINGER_S`` pass. Closing a socket with unread input makes
        the kernel answer with a reset, which can destroy the answer before the client has read it."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.queue.clear()
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            if self.paused:
                self.paused = False
                self.transport.resume_reading()
            asyncio.get_running_loop().call_later(self.LINGER_S, self.transport.close)
        else:
            self.transport.close()


class Acceptor:
    """Accepts every waiting connection each time the listening socket is readable.

    The loop's own ``create_server`` (uvloop) takes one connection per loop iteration; with hundreds of phones
    joining at once and each iteration answering hundreds of sockets, the last ones waited seconds in the kernel's
    accept queue with their first request already sent."""

    def __init__(self, front: Front, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.front, self.sock, self.loop = front, sock, loop
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self.accept)

    def accept(self) -> None:
        for _ in range(4096):
            try:
                conn, _peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors (EMFILE, ENFILE) or buffers: pause, do not spin
                log.error("captive front cannot accept: %s; pausing 0.1 s", exc)
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(0.1, self.loop.add_reader, self.sock.fileno(), self.accept)
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.loop.create_task(self._start(conn))

    async def _start(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: Connection(self.front), sock=conn)
        except OSError:  # the phone went away before its transport existed
            conn.close()

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


async def serve(front: Front, host: str, port: int, ready: Any = None) -> None:
    """Serve until cancelled."""
    loop = asyncio.get_running_loop()
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                backlog=4096)
    acceptor = Acceptor(front, sock, loop)
    log.info("captive front on %s:%d", host, port)
    if ready is not None:
        ready()
    try:
        while True:
            await asyncio.sleep(max(0.5, min(5.0, front.cfg.keepalive_s / 3)))
            front.sweep()
    finally:
        acceptor.close()
        for conn in list(front.connections):
            conn.close()
        front.pool.shutdown(wait=False, cancel_futures=True)


def run(overrides: dict[str, Any] | None = None) -> None:
    """``keliu portal --listener captive``: build the app (its services: database, Gate, neighbours) in this
    process and serve the front on ``[portal] host`` and ``captive_port`` until SIGTERM or SIGINT."""
    import signal

    import uvloop

    from portal.app import create_app

    # the lookup threads hand the GIL back to the event loop after 1 ms instead of 5 ms
    sys.setswitchinterval(0.001)
    app = create_app({"KELIU": overrides or {}, "RECONCILE": False})
    interceptor = app.wsgi_app
    assert isinstance(interceptor, Interceptor)
    p = interceptor.svc.cfg.portal
    front = Front(interceptor)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve(front, p.host, p.captive_port)
        except asyncio.CancelledError:
            log.info("captive front stopped: %s", dict(front.counts))

    uvloop.run(main())
