"""Who is asking: the client's MAC from the kernel's neighbour table for the request's source IP (an edge).

The MAC never comes from the request (a query parameter or header is forged in one line; apfree-wifidog's
``temporary_pass?mac=`` was exactly that hole). The router's neighbour table is read with pyroute2 over netlink,
one address at a time, each answer kept for ``ttl`` seconds, so a probe storm costs no syscall per request.

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
    """The kernel's IP → MAC table of the current network namespace, asked one address at a time.

    A miss asks the kernel for that one entry (RTM_GETNEIGH on the interface the previous answer came from, else on
    the one the kernel routes the address to); an answer is kept for ``ttl`` seconds, "no entry" for 50 ms. Dumping
    the whole table instead cost pyroute2 ~0.13 ms an entry in Python: 133 ms with 1,024 phones, on every new phone,
    in every process, holding the GIL the captive front's event loop needs. One ``get`` is ~0.5 ms.
    """

    MISS_TTL = 0.05

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        #: ip → (monotonic expiry, MAC or None)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._ifindex: int | None = None  # where the last answer came from (the LAN)
        self._ipr: Any = None

    def lookup(self, ip: str) -> str | None:
        with self._lock:
            now = self._clock()
            hit = self._cache.get(ip)
            if hit is not None and hit[0] > now:
                return hit[1]
            mac = self._query(ip)
            if len(self._cache) >= 65536:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[ip] = (now + (self.ttl if mac is not None else self.MISS_TTL), mac)
            return mac

    def _query(self, ip: str) -> str | None:
        from pyroute2.netlink.exceptions import NetlinkError

        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        tried: set[int] = set()
        for ifindex in (self._ifindex, self._route_ifindex(ip)):
            if ifindex is None or ifindex in tried:
                continue
            tried.add(ifindex)
            try:
                msgs = self._ipr.neigh("get", dst=ip, ifindex=ifindex)
            except NetlinkError:  # no entry on that interface (ENOENT), or not a neighbour there
                continue
            for msg in msgs:
                mac = msg.get("NDA_LLADDR")
                if mac and not msg["state"] & _BAD_STATES and mac != "00:00:00:00:00:00":
                    self._ifindex = ifindex
                    return str(mac).lower()
        return None

    def _route_ifindex(self, ip: str) -> int | None:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            routes = self._ipr.route("get", dst=ip)
        except NetlinkError:
            return None
        oif = routes[0].get("RTA_OIF") if routes else None
        return int(oif) if oif else None

    def reset_after_fork(self) -> None:
        """A netlink socket must not be shared across fork()."""
        self._ipr = None
        self._cache = {}


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
