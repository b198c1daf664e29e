"""The (MAC . IP) binding of an authorization, checked against the router's DHCP leases (pure).

A login binds the device (its MAC, through the neighbour table) to the IPv4 address it logged in from, and notes
a *lease tag*: a keyed hash of what the phone's DHCP client sent for that lease (client id and host name, as
dnsmasq's lease file records them; never stored in clear, they often carry the owner's name). Afterwards:

- **heal** (the Gate lost an authorized client, e.g. after a reboot) re-allows only the session's own address,
  and only while the DHCP lease of that address is held by that MAC: a device that clones the MAC from another
  address stays captive (:func:`heal_refusal`);
- **re-authorization** without SMS (“remember this device”) needs the same MAC at the same address, on a lease
  of that MAC (not another device's) that carries the same tag as at the login (:func:`reauth_refusal`).

Nothing here reads a file or the clock: :mod:`portal.edges.leases` reads dnsmasq's lease file, callers pass ``now``.
A refusal is a short reason (for the log line); ``None`` means allowed.

Limits: a clone that copies the MAC *and* the client id and host name (all of them visible in the victim's DHCP
broadcasts), after the victim left, is indistinguishable at layer 2 and 3; only per-user link keys would tell.
"""
from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    """One IPv4 line of dnsmasq's lease file: ``expiry mac ip hostname clientid`` ("*" for an absent field)."""

    expiry: int
    mac: str
    ip: str
    hostname: str
    client_id: str


@dataclass(frozen=True)
class NoLeaseFile:
    """No lease file is configured (the memory Gate's demo, no DHCP): only the IP binding is checked."""


NO_LEASE_FILE = NoLeaseFile()

#: what a decision is told of the leases: the lease file's IPv4 leases, ``NO_LEASE_FILE``, or ``None`` (the file
#: is configured but missing or unreadable: every check that needs it fails closed)
Leases = tuple[Lease, ...] | NoLeaseFile | None


@dataclass(frozen=True)
class Bound:
    """What a login stored of the device's binding in this store: its address, and its lease tag (``None``: the
    lease could not be confirmed at login, so re-authorization is impossible until the next SMS login)."""

    ip: str
    lease_tag: str | None


def _is_mac(value: str) -> bool:
    parts = value.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts)


def _is_ipv4(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)


def parse(text: str) -> tuple[Lease, ...]:
    """The IPv4 leases of a dnsmasq lease file. DHCPv6 lines (after the ``duid`` line, an IAID where the MAC
    would be) and anything malformed are skipped."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == "duid":
            break  # the DHCPv6 leases follow
        if len(f) != 5 or not f[0].isdigit() or not _is_mac(f[1]) or not _is_ipv4(f[2]):
            continue
        out.append(Lease(int(f[0]), f[1].lower(), f[2], f[3], f[4].lower()))
    return tuple(out)


def live(leases: Sequence[Lease], now: float) -> list[Lease]:
    """The unexpired leases (expiry 0: an infinite lease)."""
    return [le for le in leases if le.expiry == 0 or le.expiry > now]


def lease_tag(key: bytes, lease: Lease) -> str:
    """A keyed hash of what the phone's DHCP client sent (client id, host name): stored instead of the values."""
    msg = b"keliu-lease:" + lease.client_id.encode() + b"\0" + lease.hostname.encode()
    return hmac.digest(key, msg, "sha256")[:8].hex()


def agreeing_lease(leases: Sequence[Lease], mac: str, ip: str, now: float) -> Lease | str:
    """The live lease on ``ip`` if the DHCP server gave it to ``mac`` (the lease and the neighbour entry agree),
    else why not."""
    on_ip = [le for le in live(leases, now) if le.ip == ip]
    if not on_ip:
        return "no_lease"
    if any(le.mac != mac.lower() for le in on_ip):
        return "lease_of_other_mac"
    return on_ip[0]


def tag_at_login(leases: Leases, mac: str, ip: str, key: bytes, now: float) -> str | None:
    """The lease tag a login stores: ``None`` when the lease cannot be confirmed (the login itself goes ahead:
    the SMS or WeChat proof is what authorizes it; only a later re-authorization without SMS needs the tag)."""
    if isinstance(leases, NoLeaseFile) or leases is None:
        return None
    found = agreeing_lease(leases, mac, ip, now)
    return None if isinstance(found, str) else lease_tag(key, found)


def heal_refusal(session_ip: str, mac: str, ip: str, leases: Leases, now: float) -> str | None:
    """Why an authorized device's request must not re-allow it in the Gate (``None``: re-allow it).

    Only the address its session was opened from, and (with a lease file) only while that address's lease is the
    MAC's: a second address for the same MAC is a clone (or a new lease: the phone logs in again)."""
    if ip != session_ip:
        return "other_ip"
    if isinstance(leases, NoLeaseFile):
        return None
    if leases is None:
        return "leases_unreadable"
    found = agreeing_lease(leases, mac, ip, now)
    return found if isinstance(found, str) else None


def reauth_refusal(bound: Bound | None, mac: str, ip: str, leases: Leases, key: bytes, now: float) -> str | None:
    """Why a remembered device must not be re-authorized without SMS (``None``: re-authorize it).

    The same MAC at the address of its last login, on that address's live lease, which carries the tag it had
    at the login (a device that took the MAC but not the DHCP client id and host name changes the lease's)."""
    if bound is None:
        return "not_bound"
    if ip != bound.ip:
        return "other_ip"
    if isinstance(leases, NoLeaseFile):
        return None
    if leases is None:
        return "leases_unreadable"
    found = agreeing_lease(leases, mac, ip, now)
    if isinstance(found, str):
        return found
    if bound.lease_tag is None:
        return "lease_unconfirmed_at_login"
    if lease_tag(key, found) != bound.lease_tag:
        return "lease_changed"
    return None
