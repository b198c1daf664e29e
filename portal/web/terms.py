"""The store's terms page (《上网服务条款》, linked from the splash) and its logo (an edge: Flask).

Both are open to every phone, logged in or not (the terms must be readable before accepting them). The logo is
served from the database with the type its magic bytes gave at upload (:mod:`portal.core.terms`), ``nosniff``, and
a policy that runs nothing even if the bytes were opened as a page.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, make_response, render_template, request

from portal.core import i18n
from portal.core.terms import terms_text
from portal.services import services
from portal.store.models import splash_content
from portal.web.pages import content, lang

bp = Blueprint("terms", __name__)


@bp.get("/terms")
def page() -> Any:
    svc = services()
    lg = lang()
    c = content(svc.store_id, lg)
    html = render_template("terms.html", lang=lg, t=lambda k, **kw: i18n.gettext(lg, k, **kw), color=c["color"],
                           title=c["title"], text=terms_text(lg, c["terms_zh"], c["terms_en"]))
    resp = make_response(html)
    if request.args.get("lang") in i18n.LANGS:
        resp.set_cookie("lang", request.args["lang"], max_age=365 * 86400, samesite="Lax", httponly=True)
    resp.headers["Content-Language"] = lg
    return resp


def logo_response(store_id: str) -> Any:
    svc = services()
    with svc.engine.connect() as conn:
        row = conn.execute(sa.select(splash_content.c.logo, splash_content.c.logo_type)
                           .where(splash_content.c.store_id == store_id)).first()
    if row is None or row.logo is None or row.logo_type not in ("image/png", "image/jpeg", "image/webp"):
        abort(404)
    resp = make_response(bytes(row.logo))
    resp.headers["Content-Type"] = row.logo_type
    resp.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'; sandbox"
    resp.headers["Cache-Control"] = "public, max-age=86400"  # the splash's address of it changes with each save
    return resp


@bp.get("/logo")
def logo() -> Any:
    return logo_response(services().store_id)
