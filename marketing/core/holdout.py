"""Holdout assignment: treatment or control, decided once per (member, campaign) by a keyed hash.

Deterministic so that a retry, a second worker or a re-run assigns the same arm; keyed by the campaign's own salt so
that arms are independent across campaigns (a member in one campaign's control is not in every control). The hash is
SHA-256 of ``salt · 0x00 · decimal member id``; its first 8 bytes, read as an unsigned big-endian integer h, are
uniform over [0, 2**64); the member is in control when h < ceil(share · 2**64). The comparison is done on integers
(no float rounding), so the same test written in SQL on the hash's first 16 hex digits
(marketing.store.audience) gives the same arm for every member.
"""
from __future__ import annotations

import hashlib
import math
from typing import Literal

Arm = Literal["treatment", "control"]

#: the default share of eligible members held out (issue 16: 10 %)
DEFAULT_CONTROL_SHARE = 0.10


def point(salt: bytes, member_id: int) -> int:
    """The member's place in [0, 2**64) for this salt."""
    digest = hashlib.sha256(salt + b"\x00" + str(int(member_id)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def threshold(control_share: float) -> int:
    """Members whose point is below this are in control."""
    if not 0.0 <= control_share < 1.0:
        raise ValueError(f"control_share: expected 0 <= share < 1, got {control_share!r}")
    return math.ceil(control_share * 2**64)


def threshold_hex(control_share: float) -> str:
    """:func:`threshold` as 16 lowercase hex digits: compared as text with the hash's first 16 hex digits."""
    return format(min(threshold(control_share), 2**64 - 1), "016x") if control_share > 0 else "0" * 16


def assign(salt: bytes, member_id: int, control_share: float = DEFAULT_CONTROL_SHARE) -> Arm:
    return "control" if point(salt, member_id) < threshold(control_share) else "treatment"
