"""Captive detection, the splash and the status pages (an edge: Flask views over the pure ``detect`` and ``i18n``).

Every request whose Host is not the portal's own comes through :class:`Interceptor` (the router DNATs an
unauthorized client's port 80 here): a probe or page from a captive client is redirected to the splash and the
first page it asked for is kept server-side; a probe from an authorized client gets exactly the answer its OS
expects, so the login sheet closes.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, make_response, render_template, session
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from portal.core import detect, i18n
from portal.core.sessions import seconds_left
from portal.errors import UnknownClient
from portal.services import services
from portal.store import access
from portal.web.headers import FIXED
from portal.web.pages import (
    LANDING_KEY,
    after_login,
    campaign_messages,
    content,
    lang,
    no_store,
    render_error,
    render_splash,
    welcome,
)

bp = Blueprint("captive", __name__)
log = logging.getLogger("keliu.portal")

#: used with fullmatch: ``$`` with match would also accept a final newline
_HOST = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
_ASSET = (".ico", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".css", ".js", ".woff", ".woff2", ".map")


def host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


def splash_url() -> str:
    return str(services().cfg.portal.public_url) + "/"


def _fixed(resp: Response) -> Response:
    """The security headers every page of the Flask app gets (:data:`portal.web.headers.FIXED`), for the answers
    built here once, which do not pass through Flask; and ``Cache-Control: no-store``."""
    for name, value in FIXED.items():
        resp.headers.setdefault(name, value)
    return no_store(resp)


def _foreign(resp: Response) -> Response:
    """An answer to an authorized client for a foreign host: the connection closes, because it was DNATed to us
    before the login; a browser that kept it alive would send its next request for that host here again."""
    resp.headers["Connection"] = "close"
    return _fixed(resp)


def probe_answer(probe: detect.Probe) -> Response:
    return no_store(Response(probe.body, probe.status, content_type=probe.content_type))


class Prebuilt:
    """A fixed answer rendered once by werkzeug (status line, header list incl. Content-Length, body) and replayed
    as a raw WSGI app, byte for byte what ``Response.__call__`` would send: no body to a HEAD (a 1xx, 204 or 304
    has none anyway), the headers unchanged (they do not depend on the request: no Location autocorrection).

    :meth:`wire` gives the same answer as HTTP/1.1 bytes for :mod:`portal.serve.front`, which adds only ``Date``.
    """

    __slots__ = ("_wire", "body", "closes", "headers", "status")

    def __init__(self, resp: Response) -> None:
        app_iter, self.status, headers = resp.get_wsgi_response({"REQUEST_METHOD": "GET"})
        self.headers = tuple(headers)
        body = b"".join(app_iter)
        self.body = (body,) if body else ()
        #: the answer ends its connection (``Connection: close``)
        self.closes = any(k.lower() == "connection" and v.lower() == "close" for k, v in self.headers)
        self._wire: dict[tuple[bool, bool], tuple[bytes, bytes]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(self.status, list(self.headers))
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else list(self.body)

    def wire(self, head: bool, close: bool) -> tuple[bytes, bytes]:
        """(status line, the header lines after ``Date`` up to and including the empty line, then the body unless
        ``head``) of this answer on an HTTP/1.1 connection; ``close`` adds ``Connection: close`` if it lacks one."""
        key = (head, close)
        got = self._wire.get(key)
        if got is None:
            lines = [f"{k}: {v}\r\n" for k, v in self.headers]
            if close and not self.closes:
                lines.append("Connection: close\r\n")
            rest = ("".join(lines) + "\r\n").encode("latin-1") + (b"" if head else b"".join(self.body))
            got = self._wire[key] = (f"HTTP/1.1 {self.status}\r\n".encode("latin-1"), rest)
        return got


@dataclass(frozen=True, slots=True)
class Foreign:
    """What the captive path reads of a request for a host that is not the portal's own, whichever server parsed
    it (gunicorn's WSGI environ or :mod:`portal.serve.front`): ``path`` percent-decoded with one leading slash (as
    werkzeug's ``Request.path``), ``query`` raw."""

    method: str
    host: str
    path: str
    query: bytes
    remote_addr: str

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Foreign:
        # PEP 3333: PATH_INFO is the decoded path as latin-1 code points; werkzeug reads it the same way
        raw = environ.get("PATH_INFO") or "/"
        path = "/" + raw.encode("latin-1", "replace").decode("utf-8", "replace").lstrip("/")
        return cls(method=environ.get("REQUEST_METHOD", "GET").upper(),
                   host=environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "", path=path,
                   query=environ.get("QUERY_STRING", "").encode("latin-1", "replace"),
                   remote_addr=environ.get("REMOTE_ADDR") or "")


class Interceptor:
    """The captive path, for requests whose Host is not the portal's own: a captive client's DNATed probes and
    pages. They need neither routing, sessions, CSRF nor templates, so :meth:`answer` takes them from one SQL
    round trip. It serves two front ends: this object is the WSGI middleware in front of Flask (requests that
    reach gunicorn), and :mod:`portal.serve.front` calls :meth:`answer` from its thread pool (the port the router
    DNATs to).

    A device found captive is remembered for ``CAPTIVE_MEMO_S`` in this process (a probe storm from one phone
    costs one query a second); a login in this process forgets it at once, one in another process at most that
    long later, which only delays the self-healing of a client the Gate lost.

    The captive answer (302 to the splash, no-store) and each probe's expected answer never change while the
    process runs, so they are rendered once (:class:`Prebuilt`): a memoized probe costs the neighbour lookup and a
    dict read, no response object.
    """

    CAPTIVE_MEMO_S = 1.0

    def __init__(self, wsgi: Any, svc: Any) -> None:
        self.wsgi = wsgi
        self.svc = svc
        self.splash = svc.cfg.portal.public_url + "/"
        self.captive = Prebuilt(_fixed(redirect(self.splash, 302)))
        #: the expected answer of each probe to an authorized client, rendered at its first use
        self.probe_answers: dict[detect.Probe, Prebuilt] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or ""
        if host_name(host) in self.svc.own_hosts:
            return self.wsgi(environ, start_response)
        return self.answer(Foreign.from_environ(environ))(environ, start_response)

    def answer(self, req: Foreign) -> Prebuilt:
        svc = self.svc
        probe = detect.classify(req.host, req.path)
        try:
            client = svc.client(req.remote_addr)
        except UnknownClient:
            return self.captive
        memo = svc.captive_memo.get(client.device_id)
        if memo is not None and memo > time.monotonic() and probe is not None:
            return self.captive
        now = svc.now()
        try:
            with svc.engine.connect() as conn:
                found = access.lookup(conn, client.device_id, now)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            # fail closed: a captive answer, never the internet; the landing URL is not remembered this time
            log.error("database unavailable on the captive path: %s", exc.__class__.__name__)
            return self.captive
        if found.until is not None and found.ip is not None:
            if not access.heal(svc, client, found.until, found.ip, now):
                # the device's MAC, bound to another address: captive, and not memoized (the memo is per device:
                # it would answer the logged-in phone's own probes captive too)
                return self.captive
        elif found.reauth_member is None or access.reauthorize(svc, client, now) is None:
            svc.captive_memo[client.device_id] = time.monotonic() + self.CAPTIVE_MEMO_S
            if probe is None and remembers_landing(req):
                url = original_url(req)
                if url is not None:
                    access.remember_landing(svc, client.device_id, url, now)
            return self.captive
        if probe is not None:
            answer = self.probe_answers.get(probe)
            if answer is None:
                answer = self.probe_answers[probe] = Prebuilt(_foreign(probe_answer(probe)))
            return answer
        # authorized (or just re-authorized): with a real Gate the same URL now reaches the internet over a new
        # connection; the memory Gate opens nothing, so there the status page ends what would be a redirect loop
        again = original_url(req) if svc.cfg.portal.gate != "memory" and req.method == "GET" else None
        return Prebuilt(_foreign(redirect(again or svc.cfg.portal.public_url + "/status", 302)))


def remembers_landing(req: Foreign) -> bool:
    """Whether this request of a captive client is a page worth offering after login (a GET, not an asset)."""
    return req.method == "GET" and not req.path.lower().endswith(_ASSET)


def original_url(req: Foreign) -> str | None:
    host = req.host
    if not _HOST.fullmatch(host):
        return None
    url = "http://" + host + quote(req.path, safe="/%:@!$&'()*+,;=-._~")
    if req.query:
        url += "?" + req.query.decode("latin-1")
    return url if len(url) <= 2048 else None


@bp.route("/")
def splash() -> Any:
    svc = services()
    try:
        client = svc.client()
    except UnknownClient as exc:
        return render_error(exc)
    now = svc.now()
    with svc.engine.connect() as conn:
        sess = access.active_session(conn, client.device_id, now, client.ip)
    if sess is not None:
        return no_store(redirect("/status"))
    auth = access.reauthorize(svc, client, now)
    if auth is not None:
        return after_login(auth, 302)
    return render_splash()


@bp.route("/status")
def status() -> Any:
    svc = services()
    lg = lang()
    client = svc.client()
    now = svc.now()
    with svc.engine.connect() as conn:
        sess = access.active_session(conn, client.device_id, now, client.ip)
    c = content(svc.store_id)
    # the Wi-Fi success page carries the store's welcome offer, only for members who consented to marketing
    offers = welcome(sess.member_id) if sess else []
    # and the campaigns' messages queued for this member's next success page (shown once)
    messages = campaign_messages(sess.member_id) if sess else []
    # the page a login meant to send the browser to, kept while a coupon was shown first (pages.after_login)
    landing = session.get(LANDING_KEY) if sess else None
    html = render_template("status.html", lang=lg, t=lambda k, **kw: i18n.gettext(lg, k, **kw), color=c["color"],
                           online=sess is not None, seconds=seconds_left(sess.until, now) if sess else 0,
                           landing=landing if isinstance(landing, str) else None, notice=None, coupons=offers,
                           messages=messages)
    return no_store(make_response(html))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    svc = services()
    client = svc.client()
    access.end_device(svc, client, "logout", svc.now())
    session.pop(LANDING_KEY, None)
    return render_splash(notice=i18n.gettext(lang(), "logged_out"))
