"""The temporary release before the 微信连Wi-Fi hand-off (pure policy: history in, Gate commands out).

To reach WeChat the phone must get through the gate before it has logged in. The router's walled-garden set only
lets a released client reach WeChat's hosts, and this policy bounds how long and how often: one release lasts at
most ``release_seconds``; a device gets at most ``releases_per_hour`` releases in any sliding hour. Asking again
while a release is still running returns the *same* expiry (never an extension), so reconnecting over and over
(apfree-wifidog issue #215) buys nothing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keliu.gate import GateCommand, ReleaseTemporarily

HOUR_S = 3600.0


@dataclass(frozen=True)
class ReleasePolicy:
    seconds: int
    per_hour: int


@dataclass(frozen=True)
class ReleaseDecision:
    """``commands`` for the Gate (empty when refused); ``record`` says whether ``now`` counts as a new release."""

    granted: bool
    until: float
    commands: tuple[GateCommand, ...]
    record: bool
    reason: str = ""
    retry_after: float = 0.0


def decide(policy: ReleasePolicy, *, mac: str, ip: str, now: float, history: Sequence[float],
           online: bool) -> ReleaseDecision:
    """Decide a release for ``mac`` at ``ip``. ``history``: start times of this device's earlier releases.

    ``online``: the device is already allowed, so it needs no release (and gets none: a release is never a way to
    change an existing session).
    """
    if online:
        return ReleaseDecision(False, 0.0, (), False, reason="online")
    recent = sorted(t for t in history if now - HOUR_S < t <= now)
    if recent and recent[-1] + policy.seconds > now:
        until = recent[-1] + policy.seconds  # still running: same expiry, nothing new counted
        return ReleaseDecision(True, until, (ReleaseTemporarily(mac, ip, until),), False)
    if len(recent) >= policy.per_hour:
        retry = recent[len(recent) - policy.per_hour] + HOUR_S - now
        return ReleaseDecision(False, 0.0, (), False, reason="rate-limited", retry_after=retry)
    until = now + policy.seconds
    return ReleaseDecision(True, until, (ReleaseTemporarily(mac, ip, until),), True)
