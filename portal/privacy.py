"""A shopper's say over the foot-traffic sensor (an edge: SQL through :mod:`sensor.consent`).

Two things reach the sensor's device registry from the portal, never a MAC, only
``sensor.identity.member_device_id(master, mac)``:

- consent (c) at login, "link this phone's visits to my membership": the login's plan
  (:class:`portal.login_plan.RegistryChange`, id from :func:`registry_id`) registers the device as a member's
  (stable id); a later login without the tick withdraws it;
- the opt-out page ``/privacy``, open to anyone on the Wi-Fi without logging in: the sensor then drops this
  phone's frames before anything is stored. A member who opts out also withdraws consent (c) (a consent row).
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Blueprint, make_response, render_template, request
from sqlalchemy.engine import Connection

from portal import i18n, members
from portal.errors import BadRequest
from portal.models import devices
from sensor import consent
from sensor.identity import mac_bytes, member_device_id

if TYPE_CHECKING:
    from portal.app import Services
    from portal.clients import Client

bp = Blueprint("privacy", __name__)


def registry_id(svc: Services, mac: str) -> str:
    return member_device_id(svc.keys.device, mac_bytes(mac))


def _member_of(conn: Connection, device_id: str) -> int | None:
    row = conn.execute(sa.select(devices.c.member_id).where(devices.c.device_id == device_id,
                                                            devices.c.member_id.is_not(None))
                       .order_by(devices.c.last_seen.desc()).limit(1)).first()
    return None if row is None else int(row.member_id)


def set_optout(svc: Services, client: Client, out: bool, lang: str, now: datetime) -> None:
    did = registry_id(svc, client.mac)
    with svc.engine.begin() as conn:
        if out:
            consent.register(conn, did, "optout", now.timestamp())
            member_id = _member_of(conn, client.device_id)
            if member_id is not None:
                members.record_consent(conn, member_id, svc.store_id, "analytics", False, lang, now)
        else:
            consent.unregister(conn, did, "optout")


def _page(svc: Services, client: Client, lang: str, notice: str | None = None) -> Any:
    kind = consent.kind_of(svc.engine, registry_id(svc, client.mac))
    html = render_template("privacy.html", lang=lang, t=lambda k, **kw: i18n.gettext(lang, k, **kw),
                           opted_out=kind == "optout", linked=kind == "member", notice=notice)
    resp = make_response(html)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Language"] = lang
    return resp


@bp.get("/privacy")
def page() -> Any:
    from portal.app import services
    from portal.captive import lang

    svc = services()
    return _page(svc, svc.client(), lang())


@bp.post("/privacy")
def choose() -> Any:
    from portal.app import services
    from portal.captive import lang

    svc = services()
    client = svc.client()
    action = request.form.get("action")
    if action not in ("optout", "optin"):
        raise BadRequest("action must be optout or optin")
    lg = lang()
    set_optout(svc, client, action == "optout", lg, svc.now())
    return _page(svc, client, lg, i18n.gettext(lg, "privacy_done_" + action))
