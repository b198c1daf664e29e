"""Holdout assignment: treatment or control, decided once per (member, campaign) by a keyed hash (pure).

Deterministic so that a retry, a second worker or a re-run assigns the same arm; keyed by the campaign's own salt so
that arms are independent across campaigns (a member in one campaign's control is not in every control).

The hash is the one PostgreSQL computes as ``hashint4extended(member_id, seed)`` — Bob Jenkins' lookup3 on the 32-bit
id with a 64-bit seed, which PostgreSQL keeps stable across versions because hash partitioning stores its values —
so that a trigger evaluates a million members' arms in SQL for the cost of one built-in call each
(marketing.store.audience), and Python computes the same value here, bit for bit. The seed is the first 8 bytes of
SHA-256(salt). The member's point is the 64-bit result with its top bit flipped (PostgreSQL returns it as a signed
bigint: the flip maps signed order onto unsigned order), uniform over [0, 2**64); the member is in control when the
point is below ceil(share · 2**64). The comparison is done on integers (no float rounding), so SQL and Python give
the same arm for every member (tests/marketing/test_audience.py checks thousands).

(The first version hashed SHA-256(salt · 0 · id) per member, about ten times the cost in SQL; it was replaced before
any campaign was deployed. A campaign's arms are stored when its members are enrolled, so a change of rule would
only ever reach members enrolled after it.)
"""
from __future__ import annotations

import hashlib
import math
from typing import Literal

Arm = Literal["treatment", "control"]

#: the default share of eligible members held out (issue 16: 10 %)
DEFAULT_CONTROL_SHARE = 0.10

_M32 = 0xFFFFFFFF
_TOP = 1 << 63


def seed(salt: bytes) -> int:
    """The campaign's 64-bit hash seed, as PostgreSQL's signed ``bigint``."""
    unsigned = int.from_bytes(hashlib.sha256(salt).digest()[:8], "big")
    return unsigned - (1 << 64) if unsigned & _TOP else unsigned


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M32


def hashint4extended(value: int, seed_: int) -> int:
    """PostgreSQL's ``hashint4extended(value, seed)`` (lookup3's ``hash_uint32_extended``), as its signed bigint."""
    if not -(1 << 31) <= value < (1 << 31):
        raise ValueError(f"member_id: expected a 32-bit integer, got {value!r}")
    s = seed_ & ((1 << 64) - 1)
    a = b = c = (0x9E3779B9 + 4 + 3923095) & _M32
    if s:
        a = (a + (s >> 32)) & _M32
        b = (b + (s & _M32)) & _M32
        # lookup3's mix(a, b, c)
        a = (a - c) & _M32; a ^= _rot(c, 4); c = (c + b) & _M32
        b = (b - a) & _M32; b ^= _rot(a, 6); a = (a + c) & _M32
        c = (c - b) & _M32; c ^= _rot(b, 8); b = (b + a) & _M32
        a = (a - c) & _M32; a ^= _rot(c, 16); c = (c + b) & _M32
        b = (b - a) & _M32; b ^= _rot(a, 19); a = (a + c) & _M32
        c = (c - b) & _M32; c ^= _rot(b, 4); b = (b + a) & _M32
    a = (a + (value & _M32)) & _M32
    # lookup3's final(a, b, c)
    c ^= b; c = (c - _rot(b, 14)) & _M32
    a ^= c; a = (a - _rot(c, 11)) & _M32
    b ^= a; b = (b - _rot(a, 25)) & _M32
    c ^= b; c = (c - _rot(b, 16)) & _M32
    a ^= c; a = (a - _rot(c, 4)) & _M32
    b ^= a; b = (b - _rot(a, 14)) & _M32
    c ^= b; c = (c - _rot(b, 24)) & _M32
    unsigned = (b << 32) | c
    return unsigned - (1 << 64) if unsigned & _TOP else unsigned


def point(salt: bytes, member_id: int) -> int:
    """The member's place in [0, 2**64) for this salt."""
    return hashint4extended(int(member_id), seed(salt)) + _TOP


def threshold(control_share: float) -> int:
    """Members whose point is below this are in control."""
    if not 0.0 <= control_share < 1.0:
        raise ValueError(f"control_share: expected 0 <= share < 1, got {control_share!r}")
    return math.ceil(control_share * 2**64)


def signed_threshold(control_share: float) -> int:
    """:func:`threshold` on PostgreSQL's signed scale: control when ``hashint4extended(id, seed) <`` this."""
    return threshold(control_share) - _TOP


def assign(salt: bytes, member_id: int, control_share: float = DEFAULT_CONTROL_SHARE) -> Arm:
    return "control" if point(salt, member_id) < threshold(control_share) else "treatment"
