"""The marketing package's Flask edge: the POS/integration API (:mod:`.api`) and its OpenAPI part
(:mod:`.openapi`); :func:`init_app` wires them into an app."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from marketing.errors import MarketingError
from marketing.members import MemberDirectory, MemberTokens
from marketing.store import coupons
from marketing.web import api

log = logging.getLogger("keliu.marketing")


def init_app(app: Flask, engine: Engine, clock: Callable[[], float], members: MemberDirectory,
             member_tokens: MemberTokens | None = None) -> None:
    """Register marketing on ``app``: the ``/api/v1/stores/{store}/…`` POS API (bearer tokens, so exempt from the
    app's CSRF protection: a token is no ambient credential a foreign page could ride on) and the services the
    blueprints use (``app.extensions["keliu.marketing"]``). ``members`` is the portal's member directory
    adapter; ``member_tokens`` checks the member card's QR (None until the member card is wired)."""
    app.extensions["keliu.marketing"] = api.MarketingServices(engine, clock, members, member_tokens)
    app.register_blueprint(api.bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(api.bp)


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
