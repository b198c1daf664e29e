"""The services a request may use, built once per app by :func:`portal.app.create_app`: configuration, database,
Gate, SMS provider, keys, the neighbour table, the clock. Blueprints and the store reach them through
:func:`services`; nothing here imports a blueprint, so every layer may import this module."""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import current_app, request
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import Engine

from keliu.config import Config
from keliu.errors import ConfigError
from keliu.gate import AllowClient, ClientState, Gate, GateCommand, MemoryGate
from portal.core.sessions import Policy
from portal.edges import clients
from portal.edges.leases import LeaseFile
from portal.edges.sms_backends import SmsBackend

#: CSRF protection of every form (registered on the app by the factory)
csrf = CSRFProtect()


@dataclass(frozen=True)
class Keys:
    device: bytes
    token: bytes
    pepper: bytes


@dataclass(frozen=True)
class Services:
    """The edges a request may use, built once per app."""

    cfg: Config
    engine: Engine
    gate: Gate
    sms: SmsBackend
    keys: Keys
    neighbours: clients.Neighbours | Callable[[str], str | None]
    clock: Callable[[], float]
    own_hosts: frozenset[str]
    #: dnsmasq's lease file (portal.core.binding); None: none configured (the memory Gate's demo)
    leases: LeaseFile | None = None
    #: device id → monotonic time until which this process knows it is captive (see captive.Interceptor)
    captive_memo: dict[str, float] = field(default_factory=dict)

    @property
    def store_id(self) -> str:
        return str(self.cfg.portal.store)

    @property
    def mall_id(self) -> str:
        return self.cfg.store(self.store_id).mall

    @property
    def policy(self) -> Policy:
        p = self.cfg.portal
        return Policy(session_s=p.session_minutes * 60, idle_s=p.idle_minutes * 60, reauth_s=p.reauth_days * 86400)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)

    def device_of(self, mac: str) -> str:
        return clients.device_of(self.keys.device, mac)

    def client(self, ip: str | None = None) -> clients.Client:
        return clients.resolve(ip if ip is not None else request.remote_addr, self.neighbours,
                               self.cfg.portal.gate, self.keys.device)


def services() -> Services:
    return current_app.extensions["keliu"]  # type: ignore[no-any-return]


class ProcessLocalGate:
    """A Gate built lazily once per process: a netlink/libnftables context must not cross ``fork()`` (the server
    builds the app in its master, then forks workers)."""

    def __init__(self, factory: Callable[[], Gate]) -> None:
        self._factory = factory
        self._pid = -1
        self._gate: Gate | None = None

    def _get(self) -> Gate:
        if self._gate is None or self._pid != os.getpid():
            self._gate, self._pid = self._factory(), os.getpid()
        return self._gate

    def execute(self, command: GateCommand) -> None:
        self._get().execute(command)

    def clients(self) -> list[ClientState]:
        return self._get().clients()

    def reconcile(self, allowed: list[AllowClient]) -> None:
        self._get().reconcile(allowed)


def make_gate(cfg: Config) -> Gate:
    if cfg.portal.gate == "nft":
        try:
            mod = importlib.import_module("router_config.gate")
        except ImportError as exc:
            raise ConfigError("portal.gate", "'nft' needs router_config.gate (not installed)") from exc
        return ProcessLocalGate(lambda: mod.NftGate(cfg.router))
    return MemoryGate()


def own_hosts(cfg: Config) -> frozenset[str]:
    hosts = {"localhost", "127.0.0.1", "::1", cfg.portal.host}
    for url in (cfg.portal.public_url, cfg.portal.api_url):
        name = urlsplit(url).hostname
        if name:
            hosts.add(name.lower())
    router = cfg.router
    if router is not None:
        hosts.update({router.portal_name.lower(), router.portal_ip})
    return frozenset(hosts)


