"""The dashboard's marketing section (an edge: a Flask blueprint): ``/dashboard/store/<id>/marketing`` (offers,
the coupon funnel, the staff leaderboard) and ``/dashboard/mall/<id>/marketing`` (the trade-area settlement), as
pages, JSON (``/api/v1/stores/<id>/marketing``, ``/api/v1/malls/<id>/marketing``) and CSV (``….csv``).

The built-in dashboard knows nothing of marketing (it sits below it): :func:`init_app` registers this blueprint and
names the section in ``app.extensions["dashboards.sections"]``, which the dashboard page lists as links. The same
login and tenancy as the dashboard: an admin user who may see the store (or the mall); anyone else 403, nobody 401.
The range is the dashboard's (``start``/``end`` local dates, the store's zone; the mall's view in the
configuration's zone).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request, url_for
from sqlalchemy.engine import Engine

from dashboards.builtin import export
from dashboards.builtin import i18n as dashboard_i18n
from dashboards.builtin.access import parse_range
from dashboards.errors import ReportError
from keliu.accounts.web import current_user, login_required
from marketing import report
from marketing.core import dashboard as view

bp = Blueprint("marketing_dashboard", __name__, template_folder="templates")


@dataclass(frozen=True)
class _Edges:
    engine: Engine
    clock: Callable[[], float]
    timezone: str


def init_app(app: Flask, engine: Engine, clock: Callable[[], float], timezone: str) -> None:
    app.extensions["marketing.dashboard"] = _Edges(engine, clock, timezone)
    app.extensions.setdefault("dashboards.sections", []).extend([
        {"kind": "store", "id": "marketing", "title": {"zh-CN": "营销", "en": "Marketing"},
         "path": "/dashboard/store/{id}/marketing"},
        {"kind": "mall", "id": "marketing", "title": {"zh-CN": "商圈结算", "en": "Trade-area settlement"},
         "path": "/dashboard/mall/{id}/marketing"},
    ])
    app.register_blueprint(bp)


def _edges() -> _Edges:
    return cast(_Edges, current_app.extensions["marketing.dashboard"])


def _lang() -> str:
    # the console's choice, as the dashboard makes it: ?lang=, else the lang cookie, else Accept-Language
    return dashboard_i18n.pick(request.args.get("lang") or request.cookies.get("lang"),
                               request.headers.get("Accept-Language"))


def _range(tz: str) -> tuple[Any, Any]:
    today = datetime.fromtimestamp(_edges().clock(), ZoneInfo(tz)).date()
    try:
        return parse_range(request.args.get("start"), request.args.get("end"), today)
    except ReportError as exc:
        abort(400, str(exc))


def store_numbers(store_id: str, lang: str) -> dict[str, Any]:
    e = _edges()
    with e.engine.connect() as conn:
        store = conn.execute(sa.select(report.stores_t).where(report.stores_t.c.id == store_id)).first()
        user = current_user()
        if store is None:
            abort(404)
        if user is None or not user.can_see_store(store_id, store.mall_id):
            abort(403)
        start, end = _range(store.timezone)
        since, until = report.instants(start, end, store.timezone)
        return view.store_view(lang, {"id": store_id, "name": store.name}, start, end,
                               report.offer_rows(conn, store_id, since, until),
                               report.funnel(conn, store_id, since, until),
                               report.staff_rows(conn, store_id, since, until))


def mall_numbers(mall_id: str, lang: str) -> dict[str, Any]:
    e = _edges()
    malls = sa.table("malls", sa.column("id"), sa.column("name"))
    with e.engine.connect() as conn:
        mall = conn.execute(sa.select(malls).where(malls.c.id == mall_id)).first()
        user = current_user()
        if mall is None:
            abort(404)
        if user is None or not user.can_see_mall(mall_id):
            abort(403)
        start, end = _range(e.timezone)
        since, until = report.instants(start, end, e.timezone)
        names = {r.id: r.name or r.id for r in conn.execute(sa.select(report.stores_t.c.id, report.stores_t.c.name))}
        return view.mall_view(lang, {"id": mall_id, "name": mall.name}, start, end,
                              report.settlement(conn, mall_id, since, until), names)


def _answer(numbers: dict[str, Any], fmt: str) -> Any:
    if fmt == "csv":
        resp = Response(export.to_csv(numbers), mimetype="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{export.filename(numbers).replace(".csv", "-marketing.csv")}"'})
    elif fmt == "json":
        resp = jsonify(numbers)
    else:
        kind, ident = numbers["kind"], numbers[numbers["kind"]]["id"]
        api = url_for(f"marketing_dashboard.api_{kind}_csv", **{f"{kind}_id": ident})
        back = f"/dashboard/{kind}/{ident}"
        resp = Response(render_template("marketing/dashboard.html", v=numbers, csv=api + "?" +
                                        request.query_string.decode(), back=back, lang=numbers["lang"]))
    resp.headers["Cache-Control"] = "private, no-store"  # one tenant's numbers: never in a shared cache
    return resp


@bp.get("/dashboard/store/<store_id>/marketing")
@login_required
def store_page(store_id: str) -> Any:
    return _answer(store_numbers(store_id, _lang()), "html")


@bp.get("/api/v1/stores/<store_id>/marketing")
@login_required
def api_store(store_id: str) -> Any:
    return _answer(store_numbers(store_id, _lang()), "json")


@bp.get("/api/v1/stores/<store_id>/marketing.csv")
@login_required
def api_store_csv(store_id: str) -> Any:
    return _answer(store_numbers(store_id, _lang()), "csv")


@bp.get("/dashboard/mall/<mall_id>/marketing")
@login_required
def mall_page(mall_id: str) -> Any:
    return _answer(mall_numbers(mall_id, _lang()), "html")


@bp.get("/api/v1/malls/<mall_id>/marketing")
@login_required
def api_mall(mall_id: str) -> Any:
    return _answer(mall_numbers(mall_id, _lang()), "json")


@bp.get("/api/v1/malls/<mall_id>/marketing.csv")
@login_required
def api_mall_csv(mall_id: str) -> Any:
    return _answer(mall_numbers(mall_id, _lang()), "csv")
