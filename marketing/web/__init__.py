"""The marketing package's Flask edge: the POS/integration API (:mod:`.api`) and its OpenAPI part
(:mod:`.openapi`); :func:`init_app` wires them into an app."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from marketing.channels import splash
from marketing.errors import MarketingError
from marketing.members import MemberContacts, MemberDirectory, MemberTokens
from marketing.store import coupons
from marketing.web import api, sms_replies

log = logging.getLogger("keliu.marketing")


def init_app(app: Flask, engine: Engine, clock: Callable[[], float], members: MemberDirectory,
             member_tokens: MemberTokens | None = None, *, contacts: MemberContacts | None = None,
             sms_callback_secret: str | None = None,
             on_login: Callable[[int, str, datetime], None] | None = None) -> None:
    """Register marketing on ``app``: the ``/api/v1/stores/{store}/…`` POS API (bearer tokens, so exempt from the
    app's CSRF protection: a token is no ambient credential a foreign page could ride on) and the services the
    blueprints use (``app.extensions["keliu.marketing"]``). ``members`` is the portal's member directory
    adapter; ``member_tokens`` checks the member card's QR (None until the member card is wired).

    ``contacts`` and ``sms_callback_secret`` enable the SMS provider's reply callback (:mod:`.sms_replies`);
    ``on_login`` is what :func:`login_committed` calls (marketing.tasks.login_enqueuer: enqueue the login trigger)."""
    app.extensions["keliu.marketing"] = api.MarketingServices(engine, clock, members, member_tokens)
    app.extensions["keliu.marketing.sms_replies"] = (sms_callback_secret, contacts)
    app.extensions["keliu.marketing.on_login"] = on_login
    app.register_blueprint(api.bp)
    app.register_blueprint(sms_replies.bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(api.bp)
        csrf.exempt(sms_replies.bp)  # the provider's server posts it; the secret in the URL authenticates it


def login_committed(app: Flask, *, member_id: int, store_id: str, now: datetime) -> None:
    """After a login's transaction committed: enqueue the login trigger (``marketing.trigger_login``). Never
    raises: the login is done whatever happens to its marketing (a broker that is down loses this trigger, which
    is logged)."""
    enqueue = app.extensions.get("keliu.marketing.on_login")
    if enqueue is None:
        return
    try:
        enqueue(member_id, store_id, now)
    except Exception as exc:  # noqa: BLE001 - kombu and the eager task raise many kinds; the login must stand
        log.warning("login trigger for member %d not enqueued: %s", member_id, type(exc).__name__)


def splash_messages(app: Flask, *, member_id: int) -> list[str]:
    """The campaign messages queued for the member's Wi-Fi success page (marked shown now). Never raises."""
    svc: api.MarketingServices | None = app.extensions.get("keliu.marketing")
    if svc is None:
        return []
    try:
        with svc.engine.begin() as conn:
            got = splash.pending(conn, member_id)
            splash.mark_shown(conn, [int(m["id"]) for m in got], svc.now())
    except sa.exc.SQLAlchemyError as exc:
        log.warning("success-page messages of member %d failed: %s", member_id, type(exc).__name__)
        return []
    return [str(m["text"]) for m in got]


def welcome(app: Flask, *, member_id: int, store_id: str) -> list[dict[str, Any]]:
    """The coupons to show on the Wi-Fi success page after a login (see
    :func:`marketing.store.coupons.welcome_coupons`): issued now to a member who consented to marketing, nothing
    to one who did not. Never raises for a marketing or database fault: the success page must show anyway (the
    fault is logged)."""
    svc: api.MarketingServices | None = app.extensions.get("keliu.marketing")
    if svc is None:
        return []
    try:
        got = coupons.welcome_coupons(svc.engine, svc.members, member_id=member_id, store_id=store_id, now=svc.now())
        with svc.engine.connect() as conn:
            zone = coupons.zone_of_store(conn, store_id)
    except (MarketingError, sa.exc.SQLAlchemyError) as exc:
        log.warning("welcome coupons for store %s failed: %s", store_id, type(exc).__name__)
        return []
    tz = zone[1] if zone else UTC
    # shown as the last local minute it is valid ("until 23:59"), in the store's zone
    return [{"code": c.display_code, "title": c.title, "kind": c.kind, "value": c.value,
             "min_spend_cents": c.min_spend_cents, "expires_at": c.expires_at,
             "until_local": (c.expires_at - timedelta(seconds=1)).astimezone(tz).strftime("%Y-%m-%d %H:%M")}
            for c in got]
