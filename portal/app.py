"""``create_app``: the portal's Flask app factory (composition root).

Configuration in layers: code defaults → TOML (``$KELIU_CONFIG`` or ``./keliu.toml``) → ``KELIU_*`` environment →
``test_config``. ``test_config`` may hold:

- ``"KELIU"``: a nested mapping of keliu config overrides (``{"portal": {"store": "s1"}, "database_url": ...}``);
- ``"GATE"``, ``"SMS"``, ``"CLOCK"`` (epoch seconds), ``"NEIGHBOURS"`` (ip → mac or None): injected edges;
- any other key: Flask config (``TESTING``, ``WTF_CSRF_ENABLED``...).

The factory upgrades the schema, syncs tenants, ensures the demo admin, and reconciles the Gate with the session
table. Under gunicorn it runs once in the master (``preload_app``) before the workers fork.
"""
from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from keliu import config as kconfig
from keliu import db, keys, tenants
from keliu.config import Config
from keliu.errors import ConfigError
from keliu.gate import AllowClient, ClientState, Gate, GateCommand, MemoryGate
from portal.core.sessions import Policy
from portal.edges import clients
from portal.edges.leases import LeaseFile
from portal.edges.sms_backends import SmsBackend, make_backend
from portal.errors import PortalError
from portal.store import access

log = logging.getLogger("keliu.portal")
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
            raise ConfigError("keliu.gate", "'nft' needs router_config.gate (not installed)") from exc
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


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    test_config = dict(test_config or {})
    cfg = kconfig.load(overrides=test_config.pop("KELIU", None))
    if cfg.portal.store not in {s.id for s in cfg.stores}:
        raise ConfigError("portal.store", f"no [[stores]] entry with id {cfg.portal.store!r}")
    app = Flask(__name__)
    var = cfg.var_dir
    secure = {"always": True, "never": False}.get(cfg.portal.secure_cookies,
                                                   cfg.portal.public_url.startswith("https://"))
    app.config.update(
        SECRET_KEY=keys.secret_bytes(var, "flask_secret"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_NAME="keliu",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=16 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,  # the splash is plain HTTP behind DNAT; Referer checks would break it
        JSON_SORT_KEYS=False,
    )
    gate = test_config.pop("GATE", None) or make_gate(cfg)
    sms = test_config.pop("SMS", None) or make_backend(cfg.sms)
    clock = test_config.pop("CLOCK", None) or time.time
    neighbours = test_config.pop("NEIGHBOURS", None) or clients.Neighbours()
    # only the process that owns start-up reconciles (the server's master, before its workers serve); a listener
    # started later (the captive front, HTTPS) must not: a login committed between its read of the sessions and
    # its write to the Gate would be taken out of the Gate again
    reconcile = bool(test_config.pop("RECONCILE", True))
    app.config.update(test_config)

    # hide_parameters: a database error must not put a phone number into a log line
    engine = db.make_engine(cfg.database_url, hide_parameters=True)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    svc = Services(cfg=cfg, engine=engine, gate=gate, sms=sms,
                   keys=Keys(keys.secret_bytes(var, "device_hmac"), keys.secret_bytes(var, "token_hmac"),
                             keys.secret_bytes(var, "sms_pepper")),
                   neighbours=neighbours, clock=clock, own_hosts=own_hosts(cfg),
                   leases=LeaseFile(cfg.portal.dhcp_leases) if cfg.portal.dhcp_leases else None)
    app.extensions["keliu"] = svc

    from portal import auth

    auth.ensure_user(engine, cfg.portal.admin_user, cfg.portal.admin_password or keys.admin_password(var), "admin")
    if reconcile:
        access.reconcile(svc, svc.now())

    csrf.init_app(app)
    _register(app, cfg)
    return app


def _register(app: Flask, cfg: Config) -> None:
    from portal import auth
    from portal.web import admin, api, captive, openapi, privacy, sms

    app.wsgi_app = captive.Interceptor(app.wsgi_app, app.extensions["keliu"])  # type: ignore[method-assign]
    app.register_blueprint(captive.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # JSON only: a cross-site page cannot send application/json without a CORS preflight
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(privacy.bp)
    try:
        dash = importlib.import_module("dashboards.builtin")
    except ImportError:
        dash = None
    if dash is not None and getattr(dash, "blueprint", None) is not None:
        app.register_blueprint(dash.blueprint)
    if cfg.wechat.enabled:
        try:
            wechat = importlib.import_module("portal.wechat.views")
        except ImportError:
            log.warning("wechat.enabled but portal.wechat.views is not available")
        else:
            app.register_blueprint(wechat.blueprint)

    @app.errorhandler(PortalError)
    def portal_error(exc: PortalError) -> Any:
        from portal.web.captive import render_error

        return render_error(exc)

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    def database_down(exc: Exception) -> Any:
        from portal.errors import Unavailable
        from portal.web.captive import render_error

        # the transaction rolled back and the Gate was not told anything (database first, then Gate)
        log.error("database unavailable: %s", exc.__class__.__name__)
        return render_error(Unavailable("the service is briefly unavailable; try again in a few seconds"))

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Any:
        from portal.errors import PayloadTooLarge
        from portal.web.captive import render_error

        return render_error(PayloadTooLarge("the request body is too large", "too_large"))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return jsonify(error="csrf", message=exc.description), 400

    for code, name in ((400, "bad_request"), (404, "not_found"), (405, "method_not_allowed"), (403, "forbidden"),
                       (415, "unsupported_media_type")):
        app.register_error_handler(code, _json_or_html(code, name))


def _json_or_html(code: int, name: str) -> Callable[[Exception], Any]:
    def handler(exc: Exception) -> Any:
        from portal.auth import wants_json

        if wants_json():
            return jsonify(error=name, message=getattr(exc, "description", name)), code
        return f"<!doctype html><title>{code}</title><p>{code} {name.replace('_', ' ')}</p>", code

    return handler
