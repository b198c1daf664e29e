"""The signed webhook: how keliu signs a campaign's POST and how a receiver checks it (pure).

Each request carries three headers:

``X-Keliu-Timestamp``  the sending instant, whole seconds since the epoch;
``X-Keliu-Signature``  ``v1=`` and the lowercase hex HMAC-SHA256, keyed by the campaign's secret, of the timestamp,
                       a full stop and the raw body bytes (``b"1765000000." + body``);
``Idempotency-Key``    ``keliu-<campaign>-<step>-<member>``: the same for every retry of one message, so a receiver
                       that keeps the keys it has seen gets each message exactly once.

A receiver recomputes the signature over the bytes it received, compares in constant time, and refuses a
timestamp more than ``tolerance`` seconds away from its clock (a replayed capture is refused after that; within
it, the idempotency key catches a replay).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP = "X-Keliu-Timestamp"
SIGNATURE = "X-Keliu-Signature"
IDEMPOTENCY = "Idempotency-Key"
#: seconds a receiver accepts between the timestamp and its clock
TOLERANCE_S = 300


def idempotency_key(campaign_id: int, step: int, member_id: int) -> str:
    return f"keliu-{campaign_id}-{step}-{member_id}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(secret: str, timestamp: int, body: bytes, key: str) -> dict[str, str]:
    return {TIMESTAMP: str(int(timestamp)), SIGNATURE: signature(secret, timestamp, body), IDEMPOTENCY: key,
            "Content-Type": "application/json"}


def verify(secret: str, got: Mapping[str, str], body: bytes, now: float, tolerance: int = TOLERANCE_S) -> bool:
    """Whether ``body`` with headers ``got`` was signed with ``secret`` within ``tolerance`` of ``now``."""
    lower = {k.lower(): v for k, v in got.items()}
    ts, sig = lower.get(TIMESTAMP.lower(), ""), lower.get(SIGNATURE.lower(), "")
    if not ts.isdigit() or abs(now - int(ts)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(ts), body), sig)
