"""What every page of the portal shares (an edge: Flask): the shopper's language, the splash and the error pages,
JSON or HTML by what the client accepts, and the app's error handlers (:func:`init_app`)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, jsonify, make_response, redirect, render_template, request, session
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.wrappers import Response

import marketing
from keliu.accounts.web import wants_json
from portal.core import i18n
from portal.core.login_plan import Authorized
from portal.errors import PayloadTooLarge, PortalError, RateLimited, Unavailable
from portal.services import services
from portal.store.models import splash_content

log = logging.getLogger("keliu.portal")


def lang() -> str:
    return i18n.pick(request.args.get("lang"), request.cookies.get("lang"), request.headers.get("Accept-Language"))


def language_headers(resp: Response, lg: str) -> Response:
    """A shopper's page in ``lg``: the switch (``?lang=``) remembered in the ``lang`` cookie, the language named,
    caches told it varies, never stored (the pages are personal)."""
    if request.args.get("lang") in i18n.LANGS:
        resp.set_cookie("lang", request.args["lang"], max_age=365 * 86400, samesite="Lax", httponly=True)
    resp.headers["Content-Language"] = lg
    resp.headers["Vary"] = "Accept-Language, Cookie"
    return no_store(resp)


def error_text(exc: PortalError, lg: str) -> str:
    """The shopper's words for a :class:`PortalError` (the splash's catalog), else its own message."""
    msg = i18n.gettext(lg, "err_" + exc.code)
    return exc.message if msg == "err_" + exc.code else msg


def no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def content(store_id: str, lang: str = i18n.DEFAULT) -> dict[str, Any]:
    """The store's splash content in ``lang`` (the English title and offer fall back to the Chinese ones)."""
    svc = services()
    with svc.engine.connect() as conn:
        row = conn.execute(sa.select(splash_content).where(splash_content.c.store_id == store_id)).first()
    if row is None:
        name = svc.cfg.store(store_id).name
        return {"title": name, "offer": "", "color": "#d9363e", "logo": None, "terms_zh": "", "terms_en": ""}
    en = lang == "en"
    return {"title": (row.title_en if en and row.title_en else row.title),
            "offer": (row.offer_en if en and row.offer_en else row.offer), "color": row.color,
            # the logo's address changes with each save, so a cached old logo is never shown
            "logo": f"/logo?v={int(row.updated_at.timestamp())}" if row.logo else None,
            "terms_zh": row.terms_zh, "terms_en": row.terms_en}


def render_splash(status: int = 200, error: str | None = None, notice: str | None = None,
                  phone: str | None = None) -> Response:
    svc = services()
    lg = lang()
    c = content(svc.store_id, lg)
    html = render_template("splash.html", lang=lg, t=lambda k, **kw: i18n.gettext(lg, k, **kw), content=c,
                           color=c["color"], error=error, notice=notice, phone=phone,
                           reauth_days=svc.cfg.portal.reauth_days, wechat=svc.cfg.wechat.enabled)
    return language_headers(make_response(html, status), lg)


#: the page a login sent to the success page first (because a coupon was issued) goes on to: the success page's
#: "continue" link (server-side state of this browser; never a URL from a query string)
LANDING_KEY = "wifi_landing"


def welcome(member_id: int) -> list[dict[str, Any]]:
    """The Wi-Fi success page's coupons for a member who logged in at this portal's store
    (:func:`marketing.welcome`: issued once, only to a member who consented to marketing; the member's live coupon
    of the offer when asked again)."""
    return marketing.welcome(current_app, member_id=member_id, store_id=services().store_id)


def campaign_messages(member_id: int) -> list[str]:
    """The campaigns' messages queued for this member's next success page (:func:`marketing.splash_messages`:
    each shown once)."""
    return marketing.splash_messages(current_app, member_id=member_id)


def after_login(auth: Authorized, code: int = 303) -> Response:
    """Where a Wi-Fi login (or a re-authorization) sends the browser: the page it first asked for, or the success
    page. When a coupon was just issued and there is such a page, the success page comes first, showing the coupon
    with a link on to the page: a redirect straight away would lose the coupon."""
    landing = auth.landing_url
    if landing and welcome(auth.member_id):
        session[LANDING_KEY] = landing
        landing = None
    else:
        session.pop(LANDING_KEY, None)  # an earlier login's page is not this one's
    return no_store(redirect(landing or "/status", code))


def coupon_json(c: dict[str, Any]) -> dict[str, Any]:
    """A success-page coupon (:func:`welcome`) in the JSON login API's answer."""
    return {"code": c["code"], "title": c["title"], "kind": c["kind"], "value": c["value"],
            "min_spend_cents": c["min_spend_cents"], "valid_until": c["expires_at"].isoformat(),
            "valid_until_local": c["until_local"]}


def render_error(exc: PortalError) -> Any:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, (RateLimited, Unavailable)) else {}
    if wants_json():
        return jsonify(error=exc.code, message=exc.message), exc.status, headers
    msg = error_text(exc, lang())
    if isinstance(exc, Unavailable):
        # the splash reads the store's content from the database: answer without it, and come back by itself
        page = render_template("unavailable.html", lang=lang(), t=lambda k, **kw: i18n.gettext(lang(), k, **kw),
                               message=msg, retry=exc.retry_after)
        return no_store(make_response(page, exc.status, headers))
    resp = render_splash(exc.status, error=msg, phone=request.form.get("phone", "")[:32] or None)
    resp.headers.update(headers)
    return resp


def init_app(app: Flask) -> None:
    """Register the error handlers: a :class:`PortalError` (and a dead database, a too large body, a failed CSRF
    check) becomes its page or JSON; plain HTTP errors get a terse page or JSON."""

    @app.errorhandler(PortalError)
    def portal_error(exc: PortalError) -> Any:
        return render_error(exc)

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    def database_down(exc: Exception) -> Any:
        # the transaction rolled back and the Gate was not told anything (database first, then Gate)
        log.error("database unavailable: %s", exc.__class__.__name__)
        return render_error(Unavailable("the service is briefly unavailable; try again in a few seconds"))

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Any:
        if request.path.startswith("/admin/"):
            # the console's upload (the splash editor's logo): not the shopper's splash, whose form it cannot read
            return f"<!doctype html><title>413</title><p>413 {i18n.gettext(lang(), 'err_too_large')}</p>", 413
        return render_error(PayloadTooLarge("the request body is too large", "too_large"))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return jsonify(error="csrf", message=exc.description), 400

    for code, name in ((400, "bad_request"), (404, "not_found"), (405, "method_not_allowed"), (403, "forbidden"),
                       (415, "unsupported_media_type")):
        app.register_error_handler(code, _json_or_html(code, name))


def _json_or_html(code: int, name: str) -> Callable[[Exception], Any]:
    def handler(exc: Exception) -> Any:
        if wants_json():
            return jsonify(error=name, message=getattr(exc, "description", name)), code
        return f"<!doctype html><title>{code}</title><p>{code} {name.replace('_', ' ')}</p>", code

    return handler
