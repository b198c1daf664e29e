"""Sessions: validity, expiry and idleness of authorizations, decided as Gate commands (pure).

The portal's session table is the source of truth; the Gate (the kernel set on the router) is made to follow it.
Nothing here reads the clock or touches the database or the firewall: callers pass ``now`` and the rows, and get
back what to store and which commands to execute.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from keliu.gate import AllowClient, ClientState, GateCommand, RevokeClient


@dataclass(frozen=True)
class Policy:
    session_s: int
    idle_s: int
    reauth_s: int


@dataclass(frozen=True)
class Active:
    """An open session as stored (no MAC: the table keeps only the device id)."""

    id: int
    device_id: str
    ip: str
    until: datetime
    last_activity: datetime
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True)
class EndSession:
    session_id: int
    reason: str


@dataclass(frozen=True)
class TouchSession:
    session_id: int
    last_activity: datetime
    bytes_up: int
    bytes_down: int


Decision = EndSession | TouchSession | GateCommand


def grant_until(policy: Policy, now: datetime) -> datetime:
    return now + timedelta(seconds=policy.session_s)


def allow(mac: str, ip: str, until: datetime) -> AllowClient:
    return AllowClient(mac=mac, ip=ip, until=until.timestamp())


def seconds_left(until: datetime, now: datetime) -> int:
    return max(0, int((until - now).total_seconds()))


def may_reauth(reauth_until: datetime | None, now: datetime) -> bool:
    return reauth_until is not None and now < reauth_until


def extend(until: datetime, now: datetime, minutes: int, policy: Policy) -> datetime:
    """Extend by ``minutes`` from the later of now and the current end, capped at one full session from now."""
    base = max(until, now)
    return min(base + timedelta(minutes=minutes), now + timedelta(seconds=policy.session_s))


def sweep(active: Iterable[Active], gate: Iterable[ClientState], device_of: Callable[[str], str],
          now: datetime, policy: Policy) -> list[Decision]:
    """End expired and idle sessions, note activity, and revoke Gate clients that have no open session.

    ``gate`` must be read *before* ``active``: a login commits its session before it tells the Gate, so a client
    the Gate knows is then never mistaken for an orphan. A Gate client at another address than its device's session
    is an orphan too: the session binds the MAC to the address it was opened from (``portal.core.binding``).
    """
    by_device: dict[str, ClientState] = {}
    for c in gate:
        by_device[device_of(c.mac)] = c
    out: list[Decision] = []
    live: dict[str, str] = {}  # device → the address of its live session
    for s in active:
        client = by_device.get(s.device_id)
        if client is not None and client.ip != s.ip:
            client = None  # not this session's pair: an orphan, revoked below (the session's phone heals)
        if now >= s.until:
            out.append(EndSession(s.id, "expired"))
        else:
            last = s.last_activity
            if client is not None and (client.bytes_up, client.bytes_down) != (s.bytes_up, s.bytes_down):
                last = now
                out.append(TouchSession(s.id, now, client.bytes_up, client.bytes_down))
            if (now - last).total_seconds() >= policy.idle_s:
                out.append(EndSession(s.id, "idle"))
            else:
                live[s.device_id] = s.ip
                continue
        if client is not None:
            out.append(RevokeClient(client.mac))
            live.pop(s.device_id, None)
    for device, client in by_device.items():
        if live.get(device) != client.ip and RevokeClient(client.mac) not in out:
            out.append(RevokeClient(client.mac))
    return out


def reconcile(active: Iterable[Active], gate: Iterable[ClientState], device_of: Callable[[str], str],
              now: datetime) -> list[AllowClient]:
    """What the Gate should hold at start-up: the clients it knows that still have an open session.

    Sessions whose client the Gate does not know (e.g. after a router reboot) cannot be re-added without the MAC,
    which the portal does not store; that client's next request reaches the portal, which re-allows it at once.
    A Gate client at another address than its session's is not kept (the session binds the pair).
    """
    open_by_device = {s.device_id: s for s in active if now < s.until}
    out = []
    for c in gate:
        s = open_by_device.get(device_of(c.mac))
        if s is not None and s.ip == c.ip:
            out.append(allow(c.mac, c.ip, s.until))
    return out
