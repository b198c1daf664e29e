"""``create_app``: the portal's Flask app factory (composition root).

Configuration in layers: code defaults → TOML (``$KELIU_CONFIG`` or ``./keliu.toml``) → ``KELIU_*`` environment →
``test_config``. ``test_config`` may hold:

- ``"KELIU"``: a nested mapping of keliu config overrides (``{"portal": {"store": "s1"}, "database_url": ...}``);
- ``"GATE"``, ``"SMS"``, ``"CLOCK"`` (epoch seconds), ``"NEIGHBOURS"`` (ip → mac or None): injected edges;
- any other key: Flask config (``TESTING``, ``WTF_CSRF_ENABLED``...).

The factory only builds: it touches neither the schema nor the Gate. :func:`start_up` is what the process that owns
the appliance does once before serving (the server's master, before its workers fork; the tests after building an
app): upgrade the schema, sync the configured malls and stores, ensure the demo admin, and reconcile the Gate with
the session table. ``keliu db upgrade`` does the first two alone.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy.engine import Connection

import marketing
from dashboards import builtin as dashboards
from keliu import config as kconfig
from keliu import db, keys, tenants
from keliu.accounts import users
from keliu.accounts import web as accounts
from keliu.config import Config
from keliu.errors import ConfigError
from keliu.tasks import make_app
from marketing.core import card
from marketing.store import erasure as marketing_erasure
from marketing.tasks import login_enqueuer
from marketing.web import campaigns as marketing_campaigns
from marketing.web import dashboard as marketing_dashboard
from portal.edges import clients
from portal.edges.leases import LeaseFile
from portal.edges.sms_backends import make_backend
from portal.services import Keys, Services, csrf, make_gate, own_hosts
from portal.store import access, rights
from portal.store.marketing_members import PortalMembers
from portal.web import (
    admin,
    api,
    auth,
    captive,
    counter,
    headers,
    member,
    member_admin,
    member_rights,
    openapi,
    pages,
    privacy,
    sms,
    terms,
)
from portal.web import users as users_web
from portal.wechat import member_card as wechat_card
from portal.wechat import member_login as wechat_member
from portal.wechat import rights as wechat_rights
from portal.wechat import views as wechat

log = logging.getLogger("keliu.portal")


def member_components() -> list[rights.Component]:
    """Every component's exporter and eraser of a member (``portal.store.rights``), in the order deletion runs them
    (the portal's own member row goes last, whatever this list says). A component adds one line here."""
    return [rights.SENSOR, wechat_rights.COMPONENT, MARKETING, rights.PORTAL]


def _erase_marketing(conn: Connection, member_id: int) -> None:
    # the member's unused coupons are voided now: nobody can present them as theirs any more
    marketing_erasure.erase_member(conn, member_id, datetime.now(UTC))


#: marketing's part of a member (coupons, purchases, staff attributions): unlinked, never the store's amounts
MARKETING = rights.Component("marketing", marketing_erasure.export_member, _erase_marketing)


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
    app.config.update(test_config)

    # hide_parameters: a database error must not put a phone number into a log line
    engine = db.make_engine(cfg.database_url, hide_parameters=True)
    svc = Services(cfg=cfg, engine=engine, gate=gate, sms=sms,
                   keys=Keys(keys.secret_bytes(var, "device_hmac"), keys.secret_bytes(var, "token_hmac"),
                             keys.secret_bytes(var, "sms_pepper")),
                   neighbours=neighbours, clock=clock, own_hosts=own_hosts(cfg),
                   leases=LeaseFile(cfg.portal.dhcp_leases) if cfg.portal.dhcp_leases else None)
    app.extensions["keliu"] = svc
    accounts.init_app(app, engine, clock)
    # before the CSRF check reads the form: the splash editor's logo upload may be larger than other bodies
    app.before_request(admin.allow_logo_upload)
    csrf.init_app(app)
    _register(app, cfg)
    return app


def start_up(app: Flask) -> None:
    """Once per appliance start, before serving: schema, tenants, the demo admin, the Gate reconciled with the
    unexpired sessions. Only the process that owns start-up may do it (the server's master, before its workers
    serve): a listener started later (the captive front, HTTPS) that reconciled would take a login committed
    between its read of the sessions and its write to the Gate out of the Gate again."""
    svc: Services = app.extensions["keliu"]
    cfg = svc.cfg
    # a fleet's router (its own role, keliu.fleet) may neither migrate, nor rename tenants, nor create a mall-wide
    # admin: the central host does (keliu db, keliu user)
    if cfg.portal.manage_schema:
        db.upgrade(svc.engine)
        tenants.sync(svc.engine, cfg)
        # a generated first password (var/keys/admin_password) must be changed at the first login, and is then
        # never reset; a configured one is authoritative
        users.ensure_user(svc.engine, cfg.portal.admin_user,
                          cfg.portal.admin_password or keys.admin_password(cfg.var_dir), "admin",
                          generated=cfg.portal.admin_password is None)
    access.reconcile(svc, svc.now())


def _register(app: Flask, cfg: Config) -> None:
    headers.init_app(app)
    app.wsgi_app = captive.Interceptor(app.wsgi_app, app.extensions["keliu"])  # type: ignore[method-assign]
    app.register_blueprint(captive.bp)
    app.register_blueprint(sms.bp)
    app.register_blueprint(api.bp)
    # no CSRF tokens for API clients: api.refuse_cross_site makes every state-changing request application/json
    # (which a cross-site page cannot send without a refused CORS preflight) and refuses another site's Origin
    csrf.exempt(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(member_admin.bp)
    app.register_blueprint(member_rights.bp)
    app.extensions["keliu.member_components"] = member_components()
    app.register_blueprint(terms.bp)
    app.register_blueprint(users_web.bp)
    app.register_blueprint(member.bp)
    app.register_blueprint(counter.bp)
    svc: Services = app.extensions["keliu"]
    dashboards.init_app(app, svc.engine, svc.cfg, svc.clock)
    marketing.init_app(app, svc.engine, svc.clock, PortalMembers(),
                       card.CardVerifier(card.card_key(svc.keys.token), svc.mall_id), contacts=PortalMembers(),
                       sms_callback_secret=cfg.marketing.callback_secret, on_login=login_trigger(cfg))
    marketing_dashboard.init_app(app, svc.engine, svc.clock, svc.cfg.timezone)
    marketing_campaigns.init_app(app, svc.engine, svc.clock, svc.cfg.sms.backend, cfg.marketing.sms_template_map())
    if cfg.wechat.enabled:
        app.register_blueprint(wechat.blueprint)
        app.register_blueprint(wechat_member.blueprint)
        wechat_card.init_app(app)
    pages.init_app(app)


def login_trigger(cfg: Config) -> Callable[[int, str, datetime], None]:
    """What a login calls after it committed: enqueue ``marketing.trigger_login`` on the appliance's Celery app
    (keliu.tasks; built at the first login; without a broker the task runs in-process)."""
    built: list[Callable[[int, str, datetime], None]] = []

    def on_login(member_id: int, store_id: str, now: datetime) -> None:
        if not built:
            built.append(login_enqueuer(make_app(cfg)))
        built[0](member_id, store_id, now)

    return on_login
