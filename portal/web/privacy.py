"""The opt-out page ``/privacy`` (an edge: a Flask blueprint over :mod:`portal.store.privacy`), open to anyone on
the Wi-Fi without logging in: the sensor then drops this phone's frames before anything is stored."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, make_response, render_template, request

from portal.core import i18n
from portal.errors import BadRequest
from portal.services import Services, services
from portal.store.privacy import registry_id, set_optout
from portal.web.pages import lang
from sensor import consent

if TYPE_CHECKING:
    from portal.edges.clients import Client

bp = Blueprint("privacy", __name__)


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
    svc = services()
    return _page(svc, svc.client(), lang())


@bp.post("/privacy")
def choose() -> Any:
    svc = services()
    client = svc.client()
    action = request.form.get("action")
    if action not in ("optout", "optin"):
        raise BadRequest("action must be optout or optin")
    lg = lang()
    set_optout(svc, client, action == "optout", lg, svc.now())
    return _page(svc, client, lg, i18n.gettext(lg, "privacy_done_" + action))
