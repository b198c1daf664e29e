"""SMS codes: generation, keyed hashing and the verification decision (pure).

A code is 6 digits, valid ``code_ttl_s`` (5 minutes), single use, with at most ``max_tries`` attempts, and bound to
the device that asked for it: a number's codes are looked up per device, so one device's request neither replaces
nor uses up another's. At rest only
``HMAC(sms_pepper, phone_hash | code)`` is kept, and comparison is constant-time. The edge
(:mod:`portal.web.sms`) loads a :class:`CodeState`, asks :func:`verify` and stores what it says.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from portal.errors import CodeRejected, RateLimited


def new_code(randbelow: Callable[[int], int] | None = None) -> str:
    pick = randbelow or secrets.randbelow
    return f"{pick(10**6):06d}"


def phone_hash(pepper: bytes, e164: str) -> str:
    return hmac.new(pepper, b"phone:" + e164.encode(), hashlib.sha256).hexdigest()


def code_hash(pepper: bytes, phone_h: str, code: str) -> str:
    return hmac.new(pepper, b"code:" + phone_h.encode() + b"|" + code.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CodeState:
    id: int
    code_hash: str
    expires_at: datetime
    tries: int
    used: bool


Outcome = Literal["ok", "wrong"]


def verify(state: CodeState | None, entered_hash: str, now: datetime, max_tries: int) -> Outcome:
    """Decide on one attempt. Raises CodeRejected for what cannot succeed, returns "wrong" (count a try) or "ok"."""
    if state is None:
        raise CodeRejected("no code was sent to this number; request one first", "code_not_requested")
    if state.used:
        raise CodeRejected("this code was already used; request a new one", "code_used")
    if now >= state.expires_at:
        raise CodeRejected("the code has expired; request a new one", "code_expired")
    if state.tries >= max_tries:
        raise CodeRejected("too many wrong attempts; request a new code", "code_locked")
    if hmac.compare_digest(state.code_hash, entered_hash):
        return "ok"
    return "wrong"


def may_send(last_sent: datetime | None, sent_today: int, number_today: int, now: datetime, resend_s: int,
             daily_cap: int, phone_daily_cap: int) -> None:
    """Raise RateLimited if a new code may not be sent to this phone for this device now.

    ``last_sent`` and ``sent_today`` are the requesting device's codes for the number: the cooldown and the daily
    cap are per number *and* device, so another device's requests never hold up the owner's. ``number_today``
    counts every device's codes for the number, against ``phone_daily_cap``, which only abuse should reach."""
    if last_sent is not None and now < last_sent + timedelta(seconds=resend_s):
        wait = math.ceil((last_sent + timedelta(seconds=resend_s) - now).total_seconds())
        raise RateLimited(f"wait {wait} s before asking for another code", wait, "resend_cooldown")
    if sent_today >= daily_cap:
        raise RateLimited("too many codes for this number today", 3600, "daily_cap")
    if number_today >= phone_daily_cap:
        raise RateLimited("too many codes for this number today", 3600, "daily_cap")


def valid_format(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()
