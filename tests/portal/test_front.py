"""The captive front (portal.serve.front) over real sockets: a uvloop server in a thread in front of the test app
(MemoryGate, SQLite); requests come from 127.0.0.1, which the memory Gate knows by a pseudo-MAC."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.edges.sms_backends import ConsoleSms
from portal.serve.front import Front, FrontConfig, serve
from portal.store.models import landing_urls
from tests.portal.conftest import Phone

SPLASH = "http://10.77.0.1:8080/"
PROBE = b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n"


class Mono:
    """The front's clock (memo expiry, idle connections), moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Running:
    def __init__(self, front: Front, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.front = front
        self.port = port
        self.loop = loop
        self.sockets: list[socket.socket] = []

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sockets.append(s)
        return s

    def exchange(self, data: bytes, answers: int = 1, sock: socket.socket | None = None) -> list[Answer]:
        """Send ``data`` on a (new) connection and read ``answers`` responses."""
        s = sock or self.connect()
        s.sendall(data)
        reader = Reader(s)
        return [reader.answer() for _ in range(answers)]


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class Reader:
    """HTTP/1.1 responses off a socket, framed by Content-Length (all the front sends)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def answer(self, head: bool = False) -> Answer:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed mid-answer: {self.buf!r}"
        top, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = top.decode("latin-1").split("\r\n")
        version, status, _reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1"
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = 0 if head or status in ("204", "304") else int(headers["content-length"])
        while len(self.buf) < length:
            assert self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return Answer(int(status), headers, body)

    def closed(self) -> bool:
        """True when the server closed the connection (and sent nothing more)."""
        return not self.buf and not self._fill()


@pytest.fixture
def mono() -> Mono:
    return Mono()


def start(app: Flask, mono: Mono, **cfg: Any) -> Iterator[Running]:
    interceptor = app.wsgi_app
    front = Front(interceptor, FrontConfig(**cfg), clock=mono)  # type: ignore[arg-type]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    task: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task.append(loop.create_task(serve(front, "127.0.0.1", port, ready=ready.set)))
        try:
            loop.run_until_complete(task[0])
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "the front did not start"
    running = Running(front, port, loop)
    try:
        yield running
    finally:
        for s in running.sockets:
            s.close()
        loop.call_soon_threadsafe(task[0].cancel)
        thread.join(10)
        loop.close()


@pytest.fixture
def front(app: Flask, mono: Mono) -> Iterator[Running]:
    yield from start(app, mono)


def test_a_probe_is_sent_to_the_splash_with_a_date_and_the_connection_kept(front: Running) -> None:
    s = front.connect()
    first, again = front.exchange(PROBE + PROBE, answers=2, sock=s)
    for a in (first, again):
        assert (a.status, a.headers["location"], a.headers["cache-control"]) == (302, SPLASH, "no-store")
        assert a.headers["date"].endswith(" GMT") and "connection" not in a.headers
        assert len(a.body) == int(a.headers["content-length"]) > 0
    assert front.exchange(PROBE, sock=s)[0].status == 302  # still the same connection


def test_the_front_answers_as_the_wsgi_interceptor_does(app: Flask, front: Running) -> None:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path="/hotspot-detect.html", headers=[("Host", "captive.apple.com")],
                             environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
    got: list[Any] = []
    body = b"".join(app.wsgi_app(environ, lambda status, headers, exc_info=None: got.extend([status, headers])))
    a = front.exchange(b"GET /hotspot-detect.html HTTP/1.1\r\nHost: captive.apple.com\r\n\r\n")[0]
    assert f"{a.status} " == got[0][:4] and a.body == body
    assert {k.lower(): v for k, v in got[1]} == {k: v for k, v in a.headers.items() if k != "date"}


def test_a_captive_address_is_answered_from_memory_until_the_memo_expires(front: Running, mono: Mono) -> None:
    s = front.connect()
    front.exchange(PROBE, sock=s)
    assert front.front.counts["lookup"] == 1 and "127.0.0.1" in front.front.memo
    front.exchange(PROBE * 5, answers=5, sock=s)
    assert (front.front.counts["lookup"], front.front.counts["memo"]) == (1, 5)
    mono.t += 1.5
    assert front.exchange(PROBE, sock=s)[0].status == 302
    assert front.front.counts["lookup"] == 2


def test_pages_are_looked_up_and_kept_as_the_landing_url(app: Flask, front: Running, sms: ConsoleSms) -> None:
    front.exchange(PROBE)
    assert front.exchange(b"GET /news/today?id=7 HTTP/1.1\r\nHost: www.example.cn\r\n\r\n")[0].status == 302
    front.exchange(b"GET /favicon.ico HTTP/1.1\r\nHost: www.example.cn\r\n\r\n")
    assert front.front.counts["lookup"] == 2  # the page, though memoized, was looked up; the icon was not
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(landing_urls.c.url)).scalars().all() == ["http://www.example.cn/news/today?id=7"]
    r = Phone(app, "127.0.0.1").login(sms)
    assert r.headers["Location"] == "http://www.example.cn/news/today?id=7"


def test_after_login_a_probe_gets_its_os_answer_and_the_connection_closes(
        app: Flask, front: Running, mono: Mono, sms: ConsoleSms) -> None:
    s = front.connect()
    assert front.exchange(PROBE, sock=s)[0].status == 302
    assert Phone(app, "127.0.0.1").login(sms).status_code == 303
    # within the memo the old answer holds (fail closed); the splash would send the phone to /status
    assert front.exchange(PROBE, sock=s)[0].status == 302
    mono.t += 1.5
    reader = Reader(s)
    s.sendall(PROBE)
    a = reader.answer()
    assert (a.status, a.body, a.headers["connection"]) == (204, b"", "close")
    assert reader.closed()
    assert "127.0.0.1" not in front.front.memo


def test_pipelined_requests_are_answered_in_order(front: Running) -> None:
    s = front.connect()
    s.sendall(PROBE + b"HEAD /hotspot-detect.html HTTP/1.1\r\nHost: captive.apple.com\r\n\r\n"
              + b"GET /a%20b.html?q=%E4%B8%AD HTTP/1.1\r\nHost: a.example\r\n\r\n"
              + b"GET /ncsi.txt HTTP/1.1\r\nHost: www.msftncsi.com\r\nConnection: close\r\n\r\n")
    reader = Reader(s)
    got = [reader.answer(), reader.answer(head=True), reader.answer(), reader.answer()]
    assert [a.status for a in got] == [302, 302, 302, 302]
    assert int(got[1].headers["content-length"]) > 0  # HEAD: the length of the body it did not get
    assert got[3].headers["connection"] == "close" and reader.closed()


def test_http_1_0_is_answered_then_closed(front: Running) -> None:
    s = front.connect()
    s.sendall(b"GET /generate_204 HTTP/1.0\r\nHost: connectivitycheck.gstatic.com\r\n\r\n")
    reader = Reader(s)
    a = reader.answer()
    assert (a.status, a.headers["connection"]) == (302, "close") and reader.closed()


@pytest.mark.parametrize(("data", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 20000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 1_100_000, 413),
])
def test_bad_requests_get_a_clear_error_and_the_connection_ends(front: Running, data: bytes, status: int) -> None:
    s = front.connect()
    s.sendall(data)
    reader = Reader(s)
    a = reader.answer()
    assert (a.status, a.headers["connection"]) == (status, "close") and a.body.strip()
    assert reader.closed()
    assert front.front.counts["lookup"] == 0


def test_a_request_body_is_read_and_dropped_and_the_connection_goes_on(front: Running) -> None:
    s = front.connect()
    post = b"POST /api/x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 11\r\n\r\nhello world"
    chunked = b"POST /b HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    a, b, c = front.exchange(post + chunked + PROBE, answers=3, sock=s)
    assert (a.status, b.status, c.status) == (302, 302, 302)


def test_an_upgrade_is_answered_then_the_connection_ends(front: Running) -> None:
    s = front.connect()
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: chat.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    reader = Reader(s)
    a = reader.answer()
    assert (a.status, a.headers["connection"]) == (302, "close") and reader.closed()


def test_idle_connections_are_closed(front: Running, mono: Mono) -> None:
    s = front.connect()
    front.exchange(PROBE, sock=s)
    mono.t += front.front.cfg.keepalive_s + 1
    front.loop.call_soon_threadsafe(front.front.sweep)
    assert Reader(s).closed()


def test_an_overloaded_front_sends_phones_to_the_splash_without_a_lookup(app: Flask, mono: Mono) -> None:
    for running in start(app, mono, max_pending=0):
        a = running.exchange(b"GET /news HTTP/1.1\r\nHost: www.example.cn\r\n\r\n")[0]
        assert (a.status, a.headers["location"]) == (302, SPLASH)
        assert running.front.counts["shed"] == 1 and running.front.counts["lookup"] == 0
        with app.extensions["keliu"].engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(landing_urls)).scalar() == 0


def test_a_failing_lookup_keeps_the_phone_captive(app: Flask, front: Running,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_req: Any) -> Any:
        raise RuntimeError("netlink went away")

    monkeypatch.setattr(front.front.interceptor, "answer", broken)
    a = front.exchange(PROBE)[0]
    assert (a.status, a.headers["location"]) == (302, SPLASH)


def test_while_an_address_is_looked_up_its_other_probes_are_captive_without_a_lookup(
        front: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    original = front.front.interceptor.answer

    def slow(req: Any) -> Any:
        assert release.wait(10)
        return original(req)

    monkeypatch.setattr(front.front.interceptor, "answer", slow)
    first = front.connect()
    first.sendall(PROBE)
    for _ in range(100):  # until the loop has started the lookup
        if front.front.looking:
            break
        threading.Event().wait(0.02)
    assert front.front.looking == {"127.0.0.1": 1}
    a = front.exchange(PROBE * 3, answers=3)
    assert [x.status for x in a] == [302] * 3
    assert (front.front.counts["joined"], front.front.counts["lookup"]) == (3, 1)
    release.set()
    assert Reader(first).answer().status == 302
    assert front.front.counts["lookup"] == 1


def test_the_fronts_settings_come_from_the_layered_config() -> None:
    from keliu import config
    from portal.serve.front import FrontConfig, front_config

    cfg = config.build({"portal": {"captive_memo_s": 2.5, "captive_threads": 3, "head_timeout_s": 4.0,
                                   "client_connections": 9}}, {"KELIU_PORTAL_CAPTIVE_MAX_PENDING": "17"})
    assert front_config(cfg.portal) == FrontConfig(memo_s=2.5, threads=3, max_pending=17, keepalive_s=15.0,
                                                   head_s=4.0, body_s=30.0, max_body=1024 * 1024,
                                                   max_connections=10000, client_connections=9)


def test_the_captive_answers_carry_the_fixed_security_headers(front: Running) -> None:
    [a] = front.exchange(PROBE)
    assert (a.status, a.headers["x-content-type-options"], a.headers["x-frame-options"],
            a.headers["referrer-policy"]) == (302, "nosniff", "DENY", "no-referrer")
