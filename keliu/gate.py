"""The Gate: what the portal asks of the firewall (pure protocol and commands).

The portal never touches the firewall itself. Its core decides and returns *commands*; a Gate executes them.
``router_config.gate.NftGate`` is the real one (one nftables set element per client, in the kernel);
``MemoryGate`` keeps state in a dict for the demo on a laptop and for unit tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class AllowClient:
    """Let ``mac`` at ``ip`` onto the internet until ``until`` (epoch seconds)."""

    mac: str
    ip: str
    until: float


@dataclass(frozen=True)
class RevokeClient:
    """Close the internet to ``mac`` and cut its open connections."""

    mac: str


@dataclass(frozen=True)
class ReleaseTemporarily:
    """Let ``mac`` at ``ip`` reach only the walled garden (e.g. WeChat's hosts) until ``until``."""

    mac: str
    ip: str
    until: float


GateCommand = AllowClient | RevokeClient | ReleaseTemporarily


@dataclass(frozen=True)
class ClientState:
    mac: str
    ip: str
    expires_in: float | None
    bytes_up: int = 0
    bytes_down: int = 0


class Gate(Protocol):
    def execute(self, command: GateCommand) -> None: ...

    def clients(self) -> list[ClientState]: ...

    def reconcile(self, allowed: list[AllowClient]) -> None:
        """Make the set of allowed clients exactly ``allowed`` (used at start-up)."""
        ...


class MemoryGate:
    """A Gate that only remembers. Used by the demo (no root, no nft) and by unit tests."""

    def __init__(self, clock: Clock | None = None) -> None:
        import time

        self._clock = clock or time.time
        self.allowed: dict[str, AllowClient] = {}
        self.released: dict[str, ReleaseTemporarily] = {}
        self.log: list[GateCommand] = []

    def execute(self, command: GateCommand) -> None:
        self.log.append(command)
        if isinstance(command, AllowClient):
            self.released.pop(command.mac, None)
            self.allowed[command.mac] = command
        elif isinstance(command, RevokeClient):
            self.allowed.pop(command.mac, None)
            self.released.pop(command.mac, None)
        else:
            self.released[command.mac] = command

    def clients(self) -> list[ClientState]:
        now = self._clock()
        return [ClientState(c.mac, c.ip, c.until - now) for c in self.allowed.values() if c.until > now]

    def reconcile(self, allowed: list[AllowClient]) -> None:
        self.allowed = {a.mac: a for a in allowed}
        self.released = {}


class Clock(Protocol):
    def __call__(self) -> float: ...
