"""Who is asking: the client's MAC from the kernel's neighbour table for the request's source IP (an edge).

The MAC never comes from the request (a query parameter or header is forged in one line; apfree-wifidog's
``temporary_pass?mac=`` was exactly that hole). The router's neighbour table is read over rtnetlink,
one address at a time, each answer kept for ``ttl`` seconds, so a probe storm costs no syscall per request.

Demo mode: when the Gate is ``memory`` (a laptop, loopback, no router) and the source IP has no neighbour entry,
the client is given a stable *pseudo-MAC derived from the IP* (HMAC under the device key, locally administered
bit set). This never happens with the ``nft`` Gate: there, an address without a neighbour entry is refused
(:class:`portal.errors.UnknownClient`).
"""
from __future__ import annotations

import hashlib
import hmac
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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
    the whole table through pyroute2 instead cost ~0.13 ms of Python an entry: 133 ms with 1,024 phones, on every
    new phone, in every process, holding the GIL the captive front's event loop needs.
    """

    MISS_TTL = 0.05

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        #: ip → (monotonic expiry, MAC or None)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._ifindex: int | None = None  # where the last answer came from (the LAN)
        self._nl: NeighbourSocket | None = None

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
        if self._nl is None:
            self._nl = NeighbourSocket()
        tried: set[int] = set()
        for ifindex in (self._ifindex, None):
            if ifindex is None:
                ifindex = self._nl.route_ifindex(ip)
            if ifindex is None or ifindex in tried:
                continue
            tried.add(ifindex)
            found = self._nl.neighbour(ip, ifindex)
            if found is not None:
                mac, state = found
                if not state & _BAD_STATES and mac != "00:00:00:00:00:00":
                    self._ifindex = ifindex
                    return mac
        return None

    def reset_after_fork(self) -> None:
        """A netlink socket must not be shared across fork()."""
        self._nl = None
        self._cache = {}


class NeighbourSocket:
    """Two rtnetlink requests, built and read with ``struct`` (pyroute2 spends ~1 ms of Python on each): the
    neighbour entry of one address on one interface (RTM_GETNEIGH, as ``ip neigh get``), and the interface the kernel
    routes an address to (RTM_GETROUTE, as ``ip route get``). Not thread-safe: :class:`Neighbours` holds a lock."""

    _HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
    _NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
    _RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
    _ATTR = struct.Struct("=HH")
    RTM_NEWROUTE, RTM_GETROUTE, RTM_NEWNEIGH, RTM_GETNEIGH = 24, 26, 28, 30
    NLMSG_ERROR, NLM_F_REQUEST = 2, 1
    NDA_DST, NDA_LLADDR, RTA_DST, RTA_OIF = 1, 2, 1, 4

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.settimeout(2.0)
        self.seq = 0

    @staticmethod
    def _addr(ip: str) -> tuple[int, bytes]:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return family, socket.inet_pton(family, ip)

    def _attr(self, kind: int, payload: bytes) -> bytes:
        return self._ATTR.pack(4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)

    def _ask(self, kind: int, body: bytes, answer: int) -> bytes | None:
        """Send one request; the payload of its answer of type ``answer``, or None for an error (no entry)."""
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.sock.send(self._HDR.pack(self._HDR.size + len(body), kind, self.NLM_F_REQUEST, self.seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            at = 0
            while at + self._HDR.size <= len(data):
                length, mtype, _flags, seq, _pid = self._HDR.unpack_from(data, at)
                if length < self._HDR.size:
                    return None
                if seq == self.seq:
                    if mtype == answer:
                        return data[at + self._HDR.size:at + length]
                    return None  # NLMSG_ERROR: ENOENT, EINVAL …
                at += (length + 3) & ~3

    def _attrs(self, payload: bytes, start: int) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        at = start
        while at + 4 <= len(payload):
            length, kind = self._ATTR.unpack_from(payload, at)
            if length < 4:
                break
            out[kind & 0x3FFF] = payload[at + 4:at + length]
            at += (length + 3) & ~3
        return out

    def neighbour(self, ip: str, ifindex: int) -> tuple[str, int] | None:
        """(MAC, NUD state) of ``ip`` on interface ``ifindex``, or None if the kernel has no such entry."""
        family, raw = self._addr(ip)
        body = self._NDMSG.pack(family, ifindex, 0, 0, 0) + self._attr(self.NDA_DST, raw)
        payload = self._ask(self.RTM_GETNEIGH, body, self.RTM_NEWNEIGH)
        if payload is None or len(payload) < self._NDMSG.size:
            return None
        state = self._NDMSG.unpack_from(payload)[2]
        lladdr = self._attrs(payload, self._NDMSG.size).get(self.NDA_LLADDR)
        if lladdr is None or len(lladdr) != 6:
            return None
        return ":".join(f"{b:02x}" for b in lladdr), state

    def route_ifindex(self, ip: str) -> int | None:
        """The interface the kernel routes ``ip`` out of, or None."""
        family, raw = self._addr(ip)
        body = self._RTMSG.pack(family, len(raw) * 8, 0, 0, 0, 0, 0, 0, 0) + self._attr(self.RTA_DST, raw)
        payload = self._ask(self.RTM_GETROUTE, body, self.RTM_NEWROUTE)
        if payload is None:
            return None
        oif = self._attrs(payload, self._RTMSG.size).get(self.RTA_OIF)
        return struct.unpack("=I", oif)[0] if oif is not None and len(oif) == 4 else None


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
