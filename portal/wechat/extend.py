"""The ``extend`` token of the 微信连Wi-Fi hand-off (pure).

WeChat carries ``extend`` opaquely from the portal page to the ``authUrl`` call, so it is the only thing that ties
that call to the phone that asked. A token is::

    1.<store>.<expires>.<nonce>.<choices>.<tag>

``choices`` carries the consents ticked on the page before the hand-off (a bit mask, see :data:`CHOICE_BITS`), so
that the ``authUrl`` call can record them. ``tag`` is HMAC-SHA256 (the ``token_hmac`` secret) over the version,
store, expiry, nonce and choices *and* the client's MAC
and IP, truncated to 128 bits, base64url. MAC and IP are bound without being written into the token (which
travels through WeChat's servers): the verifier recomputes the tag with the MAC and IP of the client that calls
``authUrl``. Single use is the caller's job: :func:`verify` returns the nonce, and the edge consumes it atomically
(a unique row) before anything is allowed.

Every character is URL-safe: the documented JS concatenates ``extend`` into a URL unescaped.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from portal.core.login_plan import CONSENT_KINDS, REQUIRED_CONSENT
from portal.errors import PortalError

VERSION = "1"


class ExtendRejected(PortalError):
    """The token must not open anything. ``reason`` is one of ``REASONS`` and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


REASONS = ("malformed", "forged", "expired", "unknown-store", "replayed")


@dataclass(frozen=True)
class ExtendClaims:
    store_id: str
    expires: int
    nonce: str
    choices: frozenset[str] = frozenset()


#: consent kinds carried in the token (the ``terms`` are required before a token is issued at all)
CHOICE_BITS = {kind: 1 << i for i, kind in enumerate(CONSENT_KINDS)}  # terms 1, marketing 2, analytics 4, reauth 8


def _mask(choices: frozenset[str]) -> str:
    return str(sum(bit for kind, bit in CHOICE_BITS.items() if kind in choices))


def _unmask(mask: int) -> frozenset[str]:
    return frozenset(kind for kind, bit in CHOICE_BITS.items() if mask & bit)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _number(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes "²" or "١", which ``int`` refuses (a 500, not a rejection)."""
    return text.isascii() and text.isdigit()


def _tag(key: bytes, store_id: str, expires: int, nonce: str, mask: str, mac: str, ip: str) -> str:
    msg = "\n".join(["keliu-wechat-extend", VERSION, store_id, str(expires), nonce, mask, mac.lower(), ip]).encode()
    return _b64(hmac.new(key, msg, hashlib.sha256).digest()[:16])


def issue(key: bytes, *, store_id: str, mac: str, ip: str, now: float, ttl_s: int, nonce: bytes,
          choices: frozenset[str] = frozenset({REQUIRED_CONSENT})) -> str:
    """A token for the client ``mac``/``ip`` of ``store_id``, valid ``ttl_s`` seconds from ``now``.

    ``nonce`` (at least 9 random bytes) is passed in so that this stays pure and testable.
    """
    if len(nonce) < 9:
        raise ValueError("nonce: at least 9 random bytes")
    if "." in store_id:
        raise ValueError(f"store id must not contain '.': {store_id!r}")
    if REQUIRED_CONSENT not in choices or not choices <= CHOICE_BITS.keys():
        raise ValueError(f"choices: must include 'terms' and only {sorted(CHOICE_BITS)}: {sorted(choices)}")
    expires = int(now) + ttl_s
    n = _b64(nonce)
    mask = _mask(choices)
    return ".".join([VERSION, store_id, str(expires), n, mask, _tag(key, store_id, expires, n, mask, mac, ip)])


def verify(key: bytes, token: str, *, mac: str, ip: str, now: float, stores: frozenset[str]) -> ExtendClaims:
    """Check form, signature (bound to ``mac`` and ``ip``), expiry and store; raise :class:`ExtendRejected`.

    The signature is checked before anything else is believed, so a forged token learns nothing about expiry or
    store. It does not check single use (see the module docstring).
    """
    parts = token.split(".")
    if len(parts) != 6 or parts[0] != VERSION or len(token) > 200:
        raise ExtendRejected("malformed")
    _v, store_id, expires_s, nonce, mask, tag = parts
    if not _number(expires_s) or not _number(mask) or not nonce or not tag:
        raise ExtendRejected("malformed")
    expires = int(expires_s)
    if not hmac.compare_digest(_tag(key, store_id, expires, nonce, mask, mac, ip), tag):
        raise ExtendRejected("forged")
    if now >= expires:
        raise ExtendRejected("expired")
    if store_id not in stores:
        raise ExtendRejected("unknown-store")
    return ExtendClaims(store_id=store_id, expires=expires, nonce=nonce, choices=_unmask(int(mask)))
