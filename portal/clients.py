"""Who is asking: the client's MAC from the kernel's neighbour table for the request's source IP (an edge).

The MAC never comes from the request (a query parameter or header is forged in one line; apfree-wifidog's
``temporary_pass?mac=`` was exactly that hole). The router's neighbour table is read with pyroute2 over netlink;
one dump serves every lookup for ``ttl`` seconds, so the probe path costs no syscall per request.

Demo mode: when the Gate is ``memory`` (a laptop, loopback, no router) and the source IP has no neighbour entry,
the client is given a stable *pseudo-MAC derived from the IP* (HMAC under the device key, locally administered
bit set). This never happens with the ``nft`` Gate: there, an address without a neighbour entry is refused
(:class:`portal.errors.UnknownClient`).
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portal.errors import UnknownClient
from sensor import identity

_BAD_STATES = 0x01 | 0x20  # NUD_INCOMPLETE, NUD_FAILED


@dataclass(frozen=True)
class Client:
    mac: str
    ip: str
    device_id: str


class Neighbours:
    """The kernel's IP → MAC table of the current network namespace, cached for ``ttl`` seconds."""

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._table: dict[str, str] = {}
        self._at = -1e18
        self._ipr: Any = None

    def lookup(self, ip: str) -> str | None:
        with self._lock:
            now = self._clock()
            # a phone that just joined is not in an older dump: look again, but at most every 50 ms
            if now - self._at > self.ttl or (ip not in self._table and now - self._at > 0.05):
                self._table = self._dump()
                self._at = now
            return self._table.get(ip)

    def _dump(self) -> dict[str, str]:
        from pyroute2 import IPRoute

        if self._ipr is None:
            self._ipr = IPRoute()
        table: dict[str, str] = {}
        for msg in self._ipr.neigh("dump"):
            dst, mac = msg.get("NDA_DST"), msg.get("NDA_LLADDR")
            if dst and mac and not msg["state"] & _BAD_STATES and mac != "00:00:00:00:00:00":
                table[dst] = mac.lower()
        return table

    def reset_after_fork(self) -> None:
        """A netlink socket must not be shared across fork()."""
        self._ipr = None
        self._at = -1e18


def pseudo_mac(key: bytes, ip: str) -> str:
    """Demo only: a stable locally-administered MAC for an IP that has no neighbour entry."""
    raw = bytearray(hmac.new(key, b"pseudo-mac:" + ip.encode(), hashlib.sha256).digest()[:6])
    raw[0] = (raw[0] | 0x02) & 0xFE
    return ":".join(f"{b:02x}" for b in raw)


def device_of(key: bytes, mac: str) -> str:
    """The HMAC device id of a MAC (sensor.identity), the only form in which a device is stored."""
    return identity.device_id(key, identity.mac_bytes(mac))


def resolve(ip: str | None, neighbours: Neighbours | Callable[[str], str | None], gate_kind: str,
            device_key: bytes) -> Client:
    if not ip:
        raise UnknownClient("no source address")
    lookup = neighbours.lookup if isinstance(neighbours, Neighbours) else neighbours
    mac = lookup(ip)
    if mac is None:
        if gate_kind != "memory":
            raise UnknownClient("this device is not on the store's network")
        mac = pseudo_mac(device_key, ip)
    return Client(mac=mac, ip=ip, device_id=device_of(device_key, mac))
