"""The server side of one HTTP/1.1 connection, sans-io (pure: bytes and clock readings in, requests and verdicts
out; no sockets, no clock of its own).

Both portal listeners face every stranger on the guest Wi-Fi, so the parser is also where a connection's time and
size are bounded. A connection is always in one of four states:

- ``idle``: waiting for the first byte of a request. Closed silently after ``idle_s`` (on a fresh connection too:
  a socket that never speaks holds nothing for long).
- ``head``: a request's first byte has arrived, its head is not complete. Refused with 408 once ``head_s`` have
  passed since that byte: a client trickling a header byte every few seconds (slowloris) is cut, however steady.
- ``body``: the head is complete, the body is not. Refused with 408 once ``body_s`` have passed since the head.
- ``busy``: a complete request is being answered. No deadline: the server decides (the adapter calls
  :meth:`Http11.answered` when the answer is written, which starts the next ``idle``).

Sizes: the request line and headers together at most ``max_head`` bytes (431), at most ``max_headers`` header
fields (431), the body at most ``max_body`` bytes (413). A malformed request (llhttp is strict: no obs-fold, no
bare LF, no duplicate Content-Length, no Content-Length with chunked) is a 400. After any refusal nothing more is
read from the connection.

Requests are yielded in arrival order (pipelining); the adapter answers them in that order. llhttp (through
httptools) does the byte-level parsing. :class:`ClientCap` is the per-address connection count both listeners keep.
"""
from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate
from enum import Enum

import httptools

from portal.errors import PortalError


@dataclass(frozen=True)
class Limits:
    """What one request may take; every listener of the portal builds these from ``[portal]``."""

    #: seconds a connection may wait for a request's first byte (fresh, or kept alive after an answer)
    idle_s: float = 5.0
    #: seconds from a request's first byte to the end of its head
    head_s: float = 10.0
    #: seconds from the end of the head to the end of the body
    body_s: float = 30.0
    #: request line and headers, bytes
    max_head: int = 16 * 1024
    max_headers: int = 100
    #: body bytes
    max_body: int = 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    #: the request target as sent: origin form (``/a?b``) or absolute form (``http://host/a?b``)
    target: bytes
    #: the path, still percent-encoded, and the query without its ``?``
    path: bytes
    query: bytes
    #: "1.0" or "1.1"
    version: str
    #: header fields in order, names as sent
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    #: HTTP/1.1 without ``Connection: close`` (HTTP/1.0 connections end after their answer)
    keep_alive: bool
    #: an ``Upgrade`` (or CONNECT) request: answered as a plain request, then the connection ends
    upgrade: bool = False

    def header(self, name: bytes) -> bytes | None:
        """The first field named ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass(frozen=True)
class Refusal:
    """An answer the parser decides alone; the connection ends after it."""

    status: int
    reason: str
    text: str


BAD_REQUEST = Refusal(400, "Bad Request", "malformed HTTP request")
TIMEOUT = Refusal(408, "Request Timeout", "request not received in time")
BODY_TOO_LARGE = Refusal(413, "Content Too Large", "request body too large")
HEAD_TOO_LARGE = Refusal(431, "Request Header Fields Too Large", "request head too large")


class State(Enum):
    IDLE = "idle"
    HEAD = "head"
    BODY = "body"
    BUSY = "busy"
    DONE = "done"  # nothing more is read: a refusal, HTTP/1.0, Connection: close, an upgrade


#: the verdict of :meth:`Http11.expire` on an idle connection: close without a word
CLOSE = "close"


@dataclass(frozen=True)
class Continue:
    """The client asked ``Expect: 100-continue`` and the head was accepted: send ``100 Continue`` now."""


CONTINUE = Continue()


class DateHeader:
    """The ``Date:`` header line of an answer, built once per second of ``now`` (epoch seconds, given)."""

    def __init__(self) -> None:
        self._at = -1
        self._line = b""

    def line(self, now: float) -> bytes:
        second = int(now)
        if second != self._at:
            self._at, self._line = second, f"Date: {formatdate(second, usegmt=True)}\r\n".encode("ascii")
        return self._line


class ClientCap:
    """Connections per client address in one process: a device may hold at most ``cap`` at once, so one phone
    cannot take every connection a listener has."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: dict[str, int] = {}
        self.refused = 0

    def admit(self, addr: str) -> bool:
        n = self.open.get(addr, 0)
        if n >= self.cap:
            self.refused += 1
            return False
        self.open[addr] = n + 1
        return True

    def leave(self, addr: str) -> None:
        n = self.open.get(addr, 0)
        if n <= 1:
            self.open.pop(addr, None)
        else:
            self.open[addr] = n - 1


class _Stop(PortalError):
    """Raised inside a parser callback to stop parsing with a refusal."""

    def __init__(self) -> None:
        super().__init__("parsing stopped")


class Http11:
    """One connection's parser. ``feed`` bytes as they arrive and ``expire`` on a timer; both take the current
    monotonic time. Each returns what is new: requests to answer, then at most one refusal (the last word)."""

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self.state = State.IDLE
        #: when the current state began (the deadline's origin)
        self.since = now
        #: complete requests not yet answered (the adapter's queue is in front of this count)
        self.waiting = 0
        self._parser = httptools.HttpRequestParser(self)
        self._now = now
        self._out: list[Request | Refusal | Continue] = []
        self._reset_message()

    # -- the contract

    def feed(self, data: bytes, now: float) -> list[Request | Refusal | Continue]:
        if self.state is State.DONE or not data:
            return []
        self._now = now
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Stop):  # a bug in a callback, not a verdict
                raise
        except httptools.HttpParserUpgrade:
            # llhttp stops after an Upgrade or CONNECT head; its message (if complete) is already out
            self._finish()
        except httptools.HttpParserError:
            self._refuse(BAD_REQUEST)
        out, self._out = self._out, []
        return out

    def answered(self, now: float) -> None:
        """The oldest waiting request has been answered: when none waits any more, the idle clock starts."""
        self.waiting = max(0, self.waiting - 1)
        if self.state is State.BUSY and self.waiting == 0:
            # a pipelined request already begun gets its full time from now
            self.state = State.IDLE if self._part is None else self._part
            self.since = now

    def expire(self, now: float) -> Refusal | str | None:
        """The verdict when the current state's deadline has passed: :data:`CLOSE` for an idle connection, a 408
        :class:`Refusal` for a late head or body; None while in time (and whenever an answer is due)."""
        lim = self.limits
        if self.state is State.IDLE and now - self.since >= lim.idle_s:
            self.state = State.DONE
            return CLOSE
        if (self.state is State.HEAD and now - self.since >= lim.head_s) or (
                self.state is State.BODY and now - self.since >= lim.body_s):
            self.state = State.DONE
            return TIMEOUT
        return None

    def deadline(self) -> float | None:
        """When :meth:`expire` will next have a verdict, or None (answering, or done)."""
        lim = self.limits
        span = {State.IDLE: lim.idle_s, State.HEAD: lim.head_s, State.BODY: lim.body_s}.get(self.state)
        return None if span is None else self.since + span

    # -- llhttp callbacks

    def _reset_message(self) -> None:
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._head_bytes = 0
        self._body_bytes = 0
        #: how far the message being received has come (HEAD, BODY), None between messages
        self._part: State | None = None

    def on_message_begin(self) -> None:
        self._reset_message()
        self._part = State.HEAD
        if self.state is State.IDLE:
            self.state, self.since = State.HEAD, self._now
        # else a pipelined request behind one being answered: its clock starts when that answer is written

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value))
        self._headers.append((name, value))
        if len(self._headers) > self.limits.max_headers:
            self._refuse(HEAD_TOO_LARGE)
            raise _Stop

    def on_headers_complete(self) -> None:
        self._part = State.BODY
        if self.state is State.HEAD:
            self.state, self.since = State.BODY, self._now
        length = next((v for k, v in self._headers if k.lower() == b"content-length"), b"0")
        if length.isdigit() and int(length) > self.limits.max_body:  # refused before the client sends it
            self._refuse(BODY_TOO_LARGE)
            raise _Stop
        if self._parser.get_http_version() == "1.1" and any(
                k.lower() == b"expect" and v.lower() == b"100-continue" for k, v in self._headers):
            self._out.append(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body:
            self._refuse(BODY_TOO_LARGE)
            raise _Stop
        self._body.append(body)

    def on_message_complete(self) -> None:
        target = b"".join(self._url)
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            self._refuse(BAD_REQUEST)
            raise _Stop from None
        version = self._parser.get_http_version()
        upgrade = self._parser.should_upgrade()
        keep = self._parser.should_keep_alive() and version == "1.1" and not upgrade
        self._out.append(Request(
            method=self._parser.get_method().decode("ascii", "replace"),
            target=target,
            path=url.path or b"/",
            query=url.query or b"",
            version=version,
            headers=tuple(self._headers),
            body=b"".join(self._body),
            keep_alive=keep,
            upgrade=upgrade,
        ))
        self.waiting += 1
        if self.state in (State.HEAD, State.BODY):
            self.state = State.BUSY
        self._reset_message()
        if not keep:
            self._finish()
            raise _Stop

    # -- internals

    def _grow(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.limits.max_head:
            self._refuse(HEAD_TOO_LARGE)
            raise _Stop

    def _refuse(self, refusal: Refusal) -> None:
        if self.state is not State.DONE:
            self._out.append(refusal)
            self.state = State.DONE

    def _finish(self) -> None:
        """Nothing more is read; what is waiting is still answered."""
        self.state = State.DONE
