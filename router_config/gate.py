"""NftGate: the portal's Gate acting on the kernel's ``inet keliu`` sets (edge).

Every command is one libnftables transaction on a kept context (no process is spawned), so authorizing or
revoking a client costs the same with 10 or 10,000 clients online. The sets live in the kernel: if the portal
dies, logged-in phones stay online until their element times out and nobody new gets through.

The Gate remembers each client's IPv4 (the set is keyed by MAC . IPv4, a revoke names only the MAC). On start it
reads the set back; a MAC it does not know (another portal process allowed it) is looked up in the kernel.
Revoking also deletes the client's conntrack entries, so its open connections die at once and its next HTTP
request is redirected to the portal again.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Self

from keliu.gate import AllowClient, ClientState, GateCommand, ReleaseTemporarily, RevokeClient
from router_config import model as m
from router_config import render
from router_config.config import RouterConfig
from router_config.conntrack import Conntrack
from router_config.errors import NftError, PolicyError
from router_config.model import Policy
from router_config.nft import Nft


class NftGate:
    """The real Gate. ``netns`` names the namespace of the table (None: the current one; the bench passes its own)."""

    def __init__(
        self,
        cfg: RouterConfig | Policy | None = None,
        *,
        netns: str | None = None,
        clock: Callable[[], float] = time.time,
        cut_connections: bool = True,
    ) -> None:
        if isinstance(cfg, Policy):
            self.policy = cfg
        else:
            self.policy = m.policy_from(cfg or RouterConfig())
        self.netns = netns
        self._clock = clock
        self._lock = threading.Lock()
        self._ips: dict[str, str] = {}
        self._released: dict[str, str] = {}
        self._nft = Nft(netns)
        self._list = Nft(netns, json_output=True)
        self._conntrack: Conntrack | None = None
        try:
            self._conntrack = Conntrack(netns) if cut_connections else None
            for mac, ip, _, _ in self._elements(m.ALLOWED):
                self._ips[mac] = ip
            for mac, ip, _, _ in self._elements(m.RELEASED):
                self._released[mac] = ip
        except BaseException:
            self.close()
            raise

    # -- the Gate protocol

    def execute(self, command: GateCommand) -> None:
        now = self._clock()
        with self._lock:
            if isinstance(command, AllowClient):
                mac, ip = m.client_key(command.mac, command.ip)
                self._nft.run(render.allow_script(self.policy, mac, ip, command.until, now, self._ips.get(mac)))
                self._released.pop(mac, None)
                if command.until > now:
                    self._ips[mac] = ip
                else:
                    self._ips.pop(mac, None)
            elif isinstance(command, RevokeClient):
                mac = m.client_mac(command.mac)
                ips = self._known_ips(mac)
                for ip in ips:
                    self._nft.run(render.revoke_script(self.policy, mac, ip))
                if not ips and self.policy.ipv6:
                    self._nft.run(render.revoke_script(self.policy, mac, None))
                self._ips.pop(mac, None)
                released = self._released.pop(mac, None)
                if released is not None and released not in ips:
                    self._nft.run(render.release_script(self.policy, mac, released, 0.0, 0.0))
                    ips.append(released)
                if self._conntrack is not None:
                    for ip in ips:
                        self._conntrack.forget(ip)
            elif isinstance(command, ReleaseTemporarily):
                mac, ip = m.client_key(command.mac, command.ip)
                self._nft.run(render.release_script(self.policy, mac, ip, command.until, now))
                self._released[mac] = ip
            else:
                raise PolicyError("command", f"not a Gate command: {command!r}")

    def clients(self) -> list[ClientState]:
        """Logged-in clients with seconds left and byte counters (up: by MAC . IPv4, down: by IPv4)."""
        down = {ip: nbytes for ip, _, _, nbytes in self._elements(m.ALLOWED_DOWN)}
        return [
            ClientState(mac=mac, ip=ip, expires_in=expires, bytes_up=up, bytes_down=down.get(ip, 0))
            for mac, ip, expires, up in self._elements(m.ALLOWED)
        ]

    def reconcile(self, allowed: list[AllowClient]) -> None:
        """Rebuild the client sets to exactly the unexpired ``allowed`` (one transaction)."""
        now = self._clock()
        with self._lock:
            triples = [(a.mac, a.ip, a.until) for a in allowed]
            self._nft.run(render.reconcile_script(self.policy, triples, now))
            self._ips = {}
            self._released = {}
            for a in allowed:
                if a.until > now:
                    mac, ip = m.client_key(a.mac, a.ip)
                    self._ips[mac] = ip

    # -- the rest

    def close(self) -> None:
        self._nft.close()
        self._list.close()
        if self._conntrack is not None:
            self._conntrack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _known_ips(self, mac: str) -> list[str]:
        known = self._ips.get(mac)
        if known is not None:
            return [known]
        # another process may have allowed or released it: ask the kernel (slow: lists the sets)
        for emac, ip, _, _ in self._elements(m.RELEASED):
            if emac == mac:
                self._released[mac] = ip
        return sorted({ip for emac, ip, _, _ in self._elements(m.ALLOWED) if emac == mac})

    def _elements(self, name: str) -> list[tuple[str, str, float | None, int]]:
        """(key1, key2, seconds left, bytes) of every element; for a one-field set key2 is ''."""
        try:
            items = self._list.json(f"list set {m.FAMILY} {m.TABLE} {name}")
        except NftError as exc:
            raise NftError(f"{exc} (is the table applied? `keliu router apply`)") from exc
        out: list[tuple[str, str, float | None, int]] = []
        for item in items:
            elems = item.get("set", {}).get("elem", []) if isinstance(item, dict) else []
            for raw in elems:
                out.append(_element(raw))
        return out


def _element(raw: Any) -> tuple[str, str, float | None, int]:
    expires: float | None = None
    nbytes = 0
    val = raw
    if isinstance(raw, dict) and "elem" in raw:
        e = raw["elem"]
        val = e.get("val")
        if "expires" in e:
            expires = float(e["expires"])
        counter = e.get("counter")
        if isinstance(counter, dict):
            nbytes = int(counter.get("bytes", 0))
    if isinstance(val, dict) and "concat" in val:
        first, second = val["concat"][0], val["concat"][1]
        return str(first), str(second), expires, nbytes
    return str(val), "", expires, nbytes
