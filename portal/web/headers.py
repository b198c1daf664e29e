"""Security headers on every answer of the portal's Flask app: splash, member pages, admin, the built-in dashboard,
the JSON API and every error page (an edge: a Flask ``after_request`` hook).

- ``Content-Security-Policy``: scripts only from this site (no inline script, no inline event handler: the few
  scripts live in ``static/`` and read their data from ``<script type="application/json">`` blocks, which are not
  run); styles from this site plus inline ``<style>`` (the splash's per-store colour; CSS cannot run script);
  ``frame-ancestors 'none'``; no plugins; ``base-uri 'none'``. A page that must load a script from elsewhere (the
  WeChat Wi-Fi hand-off loads WeChat's JS) names that origin with :func:`allow_scripts_from`. There is no
  ``form-action``: Chrome applies it to the redirects after a form post, and the splash's login form ends in a
  redirect to the page the phone first asked for (another site), the WeChat form in a redirect to WeChat.
- ``X-Frame-Options: DENY`` (for browsers without CSP level 2), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``.

A view that set a header itself keeps its value. The captive interception's fixed answers (redirects and plain
text built once, shared with :mod:`portal.serve.front`) do not pass through Flask and are not covered here.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, g

BASE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
}
FIXED = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def policy(script_origins: tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy value, with extra origins allowed to serve scripts. Pure."""
    parts = []
    for name, sources in BASE_POLICY.items():
        if name == "script-src":
            sources = sources + [o for o in script_origins if o not in sources]
        parts.append(f"{name} {' '.join(sources)}")
    return "; ".join(parts)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL; ValueError for anything else (it would widen the policy)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in parts.netloc for c in " ;,'\"*"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def allow_scripts_from(url: str) -> None:
    """Let this request's page load scripts from ``url``'s origin."""
    g.csp_script_origins = (*g.get("csp_script_origins", ()), origin_of(url))


def _secure(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", policy(g.get("csp_script_origins", ())))
    for name, value in FIXED.items():
        resp.headers.setdefault(name, value)
    return resp


def init_app(app: Flask) -> None:
    app.after_request(_secure)
