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
- in a thread (``threads``): everything else goes through :meth:`portal.web.captive.Interceptor.answer`, the same
  code gunicorn's middleware runs (one SQL round trip; heal, re-authorization, the landing URL);
- when more than ``max_pending`` such lookups wait, the captive answer without a lookup (fail closed: a phone
  under a storm is sent to the splash, which decides properly).

The memo is keyed by the source address, not the device: it only ever yields the captive answer, so an address
that changed hands can be kept captive for at most ``memo_s`` (a logged-in phone's new connections do not come
here at all: the router stops DNATing them).

Per connection the answers go out in request order (HTTP/1.1 pipelining); a connection closes after an answer
that says so (to an authorized client), after HTTP/1.0, on a malformed request (400), an oversized head (431) or
body (413), a head or body not complete in time (408: slow senders are cut), and when idle for ``keepalive_s``.
The parsing and the deadlines are the sans-io :mod:`portal.serve.http11`, the same as the portal's own worker's; one
address holds at most ``client_connections`` at once.
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
from typing import Any
from urllib.parse import unquote_to_bytes

from portal.app import create_app
from portal.config import PortalConfig
from portal.core.detect import classify
from portal.serve import http11, transports
from portal.serve.http11 import CLOSE, ClientCap, DateHeader, Http11, Limits, Refusal, Request, State
from portal.web.captive import Foreign, Interceptor, Prebuilt, remembers_landing

log = logging.getLogger("keliu.portal.front")


@dataclass(frozen=True)
class FrontConfig:
    #: seconds an address found captive is answered from memory (probes)
    memo_s: float = 1.0
    #: threads for the lookups that need the database
    threads: int = 8
    #: lookups waiting beyond this are answered captive without one (shed load, fail closed)
    max_pending: int = 256
    #: seconds a connection may wait for a request's first byte (phones keep their probe connections open)
    keepalive_s: float = 15.0
    #: seconds from a request's first byte to the end of its head, and from there to the end of its body
    head_s: float = 10.0
    body_s: float = 30.0
    #: request line + headers; a request body is read and dropped, up to this
    max_head: int = 16 * 1024
    max_body: int = 1024 * 1024
    max_connections: int = 10000
    #: connections one address may hold at once
    client_connections: int = 64


def front_config(p: PortalConfig) -> FrontConfig:
    """The front's settings from ``[portal]`` (its own ``captive_*`` keys and the request limits both listeners
    share)."""
    return FrontConfig(memo_s=p.captive_memo_s, threads=p.captive_threads, max_pending=p.captive_max_pending,
                       keepalive_s=p.captive_keepalive_s, head_s=p.head_timeout_s, body_s=p.body_timeout_s,
                       max_body=p.max_body, max_connections=p.captive_max_connections,
                       client_connections=p.client_connections)


def _plain(status: str, text: str) -> Prebuilt:
    from werkzeug.wrappers import Response

    resp = Response(text + "\n", status, content_type="text/plain; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Connection"] = "close"
    return Prebuilt(resp)


#: the core's refusals, prebuilt once
REFUSALS = {r.status: _plain(f"{r.status} {r.reason.upper()}", r.text)
            for r in (http11.BAD_REQUEST, http11.TIMEOUT, http11.BODY_TOO_LARGE, http11.HEAD_TOO_LARGE)}


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
        c = self.cfg
        self.limits = Limits(idle_s=c.keepalive_s, head_s=c.head_s, body_s=c.body_s, max_head=c.max_head,
                             max_body=c.max_body)
        self.clients = ClientCap(c.client_connections)
        self.pool = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="keliu-front")
        self.counts = collections.Counter[str]()
        self._jitter = random.Random()
        self._date = DateHeader()

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
        return self._date.line(time.time())

    # -- housekeeping

    def sweep(self) -> None:
        """Apply the connections' deadlines and forget expired memo entries (called every second)."""
        now = self.clock()
        for conn in list(self.connections):
            conn.expire(now)
        for ip in [ip for ip, until in self.memo.items() if until <= now]:
            del self.memo[ip]


class Connection(asyncio.Protocol):
    """One client socket: :class:`portal.serve.http11.Http11` parses and keeps the deadlines, answers leave in
    request order."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: Any = None
        self.core = Http11(front.limits, front.clock())
        self.peer = ""
        self.admitted = False
        #: (request or a fixed error answer, keep-alive) in arrival order
        self.queue: collections.deque[tuple[Foreign | Prebuilt, bool]] = collections.deque()
        self.busy = False  # a lookup for the head of the queue is running
        self.closing = False  # the transport is (being) closed
        self.closing_after = False  # nothing more is read: close after the queued answers
        self.writable = True
        self.paused = False

    # -- asyncio.Protocol

    def connection_made(self, transport: Any) -> None:  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        front = self.front
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        if len(front.connections) >= front.cfg.max_connections:
            front.counts["refused"] += 1
            transport.abort()
            return
        if not front.clients.admit(self.peer):
            # one device holds its share: it cannot take every connection the front has from the other phones
            front.counts["refused_client_cap"] += 1
            transport.abort()
            return
        self.admitted = True
        front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        if self.admitted:
            self.admitted = False
            self.front.clients.leave(self.peer)
        self.closing = True
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        for event in self.core.feed(data, self.front.clock()):
            if isinstance(event, Refusal):
                self.front.counts["bad"] += 1
                self.queue.append((REFUSALS[event.status], False))
            elif isinstance(event, Request):
                self.queue.append((self._foreign(event), event.keep_alive))
            elif not self.queue and not self.busy:  # 100-continue: the body is read (and dropped)
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.core.state is State.DONE:
            self._done_reading()
        elif len(self.queue) > 32 and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._pump()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self._pump()

    def _foreign(self, req: Request) -> Foreign:
        path = "/" + unquote_to_bytes(req.path).decode("utf-8", "replace").lstrip("/")
        host = req.header(b"host") or b""
        return Foreign(method=req.method, host=host.decode("latin-1"), path=path, query=req.query,
                       remote_addr=self.peer)

    def expire(self, now: float) -> None:
        """Apply the core's deadline: an idle connection closes, a late head or body is answered 408."""
        if self.closing:
            return
        verdict = self.core.expire(now)
        if verdict == CLOSE:
            self.close()
        elif isinstance(verdict, Refusal):
            self.front.counts["timeout"] += 1
            self.queue.append((REFUSALS[verdict.status], False))
            self._done_reading()
            self._pump()

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
                # the idle clock starts before the answer leaves: a client that reads it must find it started
                self.core.answered(front.clock())
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
        self.core.answered(self.front.clock())
        self._write(req.method, keep, fut.result())
        self._pump()

    def _write(self, method: str, keep: bool, answer: Prebuilt) -> None:
        assert self.transport is not None
        last = answer.closes or not keep or (self.closing_after and not self.queue)
        status, rest = answer.wire(method == "HEAD", last)
        self.transport.write(b"".join((status, self.front.date(), rest)))
        if last:
            self.close(linger=self.closing_after)

    def close(self, linger: bool = False) -> None:
        """Close, lingering if the client may still be sending (:func:`portal.serve.transports.close`)."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        self.queue.clear()
        self.paused = False
        transports.close(self.transport, linger)


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
            await asyncio.sleep(0.5)
            front.sweep()
    finally:
        acceptor.close()
        for conn in list(front.connections):
            conn.close()
            if conn.transport is not None:  # a lingering one too
                conn.transport.close()
        front.pool.shutdown(wait=False, cancel_futures=True)


def run(overrides: dict[str, Any] | None = None) -> None:
    """``keliu portal --listener captive``: build the app (its services: database, Gate, neighbours) in this
    process and serve the front on ``[portal] host`` and ``captive_port`` until SIGTERM or SIGINT."""
    import signal

    import uvloop


    # the lookup threads hand the GIL back to the event loop after 1 ms instead of 5 ms
    sys.setswitchinterval(0.001)
    app = create_app({"KELIU": overrides or {}})  # no start_up: the server's master did it
    interceptor = app.wsgi_app
    assert isinstance(interceptor, Interceptor)
    p = interceptor.svc.cfg.portal
    front = Front(interceptor, front_config(p))

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
