"""The member card's dynamic QR code (pure): a signed token that names a member of one mall for about a minute.

The token is ``KC1.<mall>.<member>.<issued>.<nonce>.<mac>`` (ASCII, about 70 characters: a small QR code):

- ``mall``: the mall whose counters may accept it (a code from another mall is refused, even with a valid MAC);
- ``member``: the member id; ``issued``: epoch seconds of issue; ``nonce``: 12 random bytes, base32;
- ``mac``: HMAC-SHA256 over everything before it, under the card key (derived from the appliance's ``token_hmac``
  secret, :func:`card_key`), truncated to 16 bytes, base32.

A token is valid for :data:`TTL_S` seconds after ``issued`` (plus :data:`SKEW_S` for a clock a little ahead), so a
screenshot is useless a minute later; inside that minute, the counter records the nonce the first time it accepts
the code (:func:`verify` takes the set of used nonces; the edge keeps it in a table with a unique key), so the same
code shown twice is refused the second time. The clock, the key and the nonce are injected; nothing here reads them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime

from marketing.errors import MarketingError

PREFIX = "KC1"
#: seconds a code is accepted after it was issued
TTL_S = 60
#: seconds a code's issue time may lie in the future (the member's page and the counter share the server's clock,
#: so this only covers a refresh racing the check)
SKEW_S = 5
#: the page asks for a new code this long before the old one expires
REFRESH_S = 45
_MALL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_B32 = re.compile(r"^[A-Z2-7]+$")


class CardRejected(MarketingError):
    """A member QR code the counter must not accept; ``reason`` says why (``malformed``, ``forged``, ``expired``,
    ``replayed``, ``other_mall``)."""

    status = 409

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = f"card_{reason}"


@dataclass(frozen=True)
class CardClaims:
    mall_id: str
    member_id: int
    issued_at: int
    nonce: str

    @property
    def expires_at(self) -> int:
        return self.issued_at + TTL_S


def card_key(token_secret: bytes) -> bytes:
    """The card's own key, derived from the appliance's token secret (one secret file, keys kept apart by purpose)."""
    return hmac.new(token_secret, b"keliu member card v1", hashlib.sha256).digest()


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _mac(key: bytes, body: str) -> str:
    return _b32(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:16])


def sign(key: bytes, mall_id: str, member_id: int, now: int, nonce: bytes) -> str:
    """A code for ``member_id`` in ``mall_id``, issued at ``now`` (epoch seconds) with ``nonce`` (random bytes)."""
    if not _MALL.match(mall_id):
        raise ValueError(f"mall id {mall_id!r} cannot be put in a card code")
    if member_id <= 0 or len(nonce) < 8:
        raise ValueError("a card code needs a member id and at least 8 bytes of nonce")
    body = f"{PREFIX}.{mall_id}.{member_id}.{int(now)}.{_b32(nonce)}"
    return f"{body}.{_mac(key, body)}"


def parse(token: str) -> CardClaims:
    """The claims of a well-formed code, unverified (CardRejected ``malformed`` otherwise)."""
    parts = token.strip().split(".")
    if (len(parts) != 6 or parts[0] != PREFIX or not _MALL.match(parts[1]) or not parts[2].isdigit()
            or not parts[3].isdigit() or len(parts[2]) > 18 or len(parts[3]) > 12
            or not _B32.match(parts[4]) or not _B32.match(parts[5]) or len(parts[4]) > 64):
        raise CardRejected("malformed", "this is not a member card code")
    return CardClaims(parts[1], int(parts[2]), int(parts[3]), parts[4])


def looks_like_card(text: str) -> bool:
    """Whether a scanned or typed text is meant as a member card code (rather than a coupon code)."""
    return text.strip().startswith(PREFIX + ".")


def verify(key: bytes, token: str, mall_id: str, now: int, used_nonces: Container[str] = ()) -> CardClaims:
    """The claims of a code this counter (of ``mall_id``) may accept at ``now``; CardRejected otherwise.

    Order matters: the MAC first (a forged code learns nothing else), then the mall, the time, the nonce."""
    claims = parse(token)
    body, _, mac = token.strip().rpartition(".")
    if not hmac.compare_digest(_mac(key, body), mac):
        raise CardRejected("forged", "this member code was not issued by keliu")
    if claims.mall_id != mall_id:
        raise CardRejected("other_mall", "this member code belongs to another mall")
    if now > claims.expires_at:
        raise CardRejected("expired", "this member code has expired; ask the member to refresh the card")
    if claims.issued_at > now + SKEW_S:
        raise CardRejected("forged", "this member code is dated in the future")
    if claims.nonce in used_nonces:
        raise CardRejected("replayed", "this member code was already used; ask the member to refresh the card")
    return claims


class CardVerifier:
    """:class:`marketing.members.MemberTokens` for a POS that sends the member QR it scanned with a sale: the member
    a code proves now in ``mall_id`` (signature, mall, age), or None. It does not use the nonce up: a POS resends
    a sale with the same QR until it gets an answer, and the sale must link to the same member each time (the sale
    itself is idempotent on its transaction id). The counter page, which acts on a scan, uses nonces up
    (:func:`marketing.staff.use_card`)."""

    def __init__(self, key: bytes, mall_id: str) -> None:
        self._key = key
        self.mall_id = mall_id

    def __repr__(self) -> str:  # never show the key
        return f"CardVerifier(mall_id={self.mall_id!r})"

    def member_of(self, token: str, now: datetime) -> int | None:
        try:
            return verify(self._key, token, self.mall_id, int(now.timestamp())).member_id
        except CardRejected:
            return None
