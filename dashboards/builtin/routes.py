"""The built-in dashboard's blueprint (an edge): pages under ``/dashboard``, the JSON API under ``/api/v1/``.

Views are thin: check the login and the tenancy (:mod:`dashboards.builtin.access`), ask analytics for the reports,
shape them with :mod:`dashboards.builtin.views`, answer JSON or CSV. The database engine, the configuration and the
clock are handed over by :func:`init_app`; the admin identity is :mod:`keliu.accounts.web`; the report functions come
from ``analytics.report``, or from ``app.extensions["dashboards.reports"]`` when a test or a bench injects another
implementation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar, cast
from urllib.parse import quote

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.engine import Engine

from analytics import report as analytics_report
from analytics.days import local_day
from analytics.occupancy import MAX_WINDOW_S, WINDOW_S
from dashboards.builtin import access, export, i18n, views
from dashboards.builtin.access import User
from dashboards.errors import ReportError
from keliu.accounts.web import current_user, login_required
from keliu.config import Config

blueprint = Blueprint("dashboards", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/dashboard/static")

F = TypeVar("F", bound=Callable[..., Any])
#: how often the page asks for the live occupancy again (the figure is then at most this much + the sensor's
#: delivery behind the frames: within 60 s)
LIVE_POLL_S = 20


# --- edges --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edges:
    """What the dashboards use of the appliance, handed over by the app's factory."""

    engine: Engine
    cfg: Config
    clock: Callable[[], float]


def init_app(app: Flask, engine: Engine, cfg: Config, clock: Callable[[], float]) -> None:
    """Register the blueprint with the database engine, the configuration and the clock."""
    app.extensions["dashboards"] = Edges(engine, cfg, clock)
    app.register_blueprint(blueprint)


def _services() -> Edges:
    return cast(Edges, current_app.extensions["dashboards"])


def _reports() -> Any:
    injected = current_app.extensions.get("dashboards.reports")
    return injected if injected is not None else analytics_report


def _user() -> User | None:
    return cast("User | None", current_user())


_login_required = login_required


def _lang() -> str:
    # the console's choice: ?lang=, else the lang cookie the admin and the splash set, else Accept-Language
    return i18n.pick(request.args.get("lang") or request.cookies.get("lang"), request.headers.get("Accept-Language"))


def _tenants() -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
    """Mall names by id, and stores by id (mall, name, timezone)."""
    eng = _services().engine
    with eng.connect() as conn:
        malls = {r.id: r.name for r in conn.execute(sa.text("SELECT id, name FROM malls ORDER BY id"))}
        stores = {r.id: {"id": r.id, "mall_id": r.mall_id, "name": r.name, "timezone": r.timezone}
                  for r in conn.execute(sa.text("SELECT id, mall_id, name, timezone FROM stores ORDER BY id"))}
    return malls, {k: v["mall_id"] for k, v in stores.items()}, stores


def _today(tz: str) -> date:
    return local_day(_services().clock(), tz)


def _range(tz: str) -> tuple[date, date]:
    return access.parse_range(request.args.get("start"), request.args.get("end"), _today(tz))


def _respond(view: dict[str, Any], csv: bool) -> Any:
    if csv:
        # content_type, not mimetype: Flask would append a second "; charset=utf-8" to a mimetype
        resp = Response(export.to_csv(view, _lang()), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{export.filename(view)}"'})
    else:
        resp = jsonify(view)
    resp.headers["Cache-Control"] = "private, no-store"  # one tenant's numbers: never in a shared cache
    return resp


def _require_user() -> User:
    user = _user()
    if user is None:  # login_required ran before; this keeps the type checker and a misconfigured app honest
        raise ReportError("log in first", status=401)
    return user


# --- the numbers ----------------------------------------------------------------------------------------------


def store_numbers(store_id: str, lang: str) -> dict[str, Any]:
    user = _require_user()
    _malls, mall_of, stores = _tenants()
    access.check_store(user, store_id, mall_of)
    store = stores[store_id]
    start, end = _range(store["timezone"])
    pstart, pend = views.previous_range(start, end)
    now = _services().clock()  # one instant for the comparison's cut, the card's ages and the status
    until = views.previous_until(start, end, store["timezone"], now)
    rep, eng = _reports(), _services().engine
    current = rep.store_range(eng, store_id, start, end, _services().cfg)
    previous = rep.store_range(eng, store_id, pstart, pend, _services().cfg, until)
    view = views.store_view(lang, store, start, end, current, previous, until, now)
    view["uncertainty"] = current.get("uncertainty")  # the error bands and bases (analytics.bands)
    view["status"] = views.status(lang, rep.last_report(eng, store_id), now, current)
    view["live"] = _store_live(store_id, lang, WINDOW_S)
    return view


def mall_numbers(mall_id: str, lang: str) -> dict[str, Any]:
    user = _require_user()
    malls, mall_of, stores = _tenants()
    access.check_mall(user, mall_id, malls)
    tz = _services().cfg.timezone
    start, end = _range(tz)
    pstart, pend = views.previous_range(start, end)
    now = _services().clock()
    until = views.previous_until(start, end, tz, now)
    rep, eng = _reports(), _services().engine
    current = rep.mall_range(eng, mall_id, start, end, _services().cfg)
    previous = rep.mall_range(eng, mall_id, pstart, pend, _services().cfg, until)
    names = {sid: s["name"] or sid for sid, s in stores.items()}
    last = {sid: rep.last_report(eng, sid) for sid, m in mall_of.items() if m == mall_id}
    view = views.mall_view(lang, {"id": mall_id, "name": malls[mall_id]}, start, end, current, previous, names,
                           last, now, until, tz)
    view["live"] = _mall_live(mall_id, lang, WINDOW_S, mall_of, names)
    return view


# live occupancy: read from the last minutes of sightings on every request (analytics.report.store_live), so the
# figure is as fresh as the sensor's delivery (seconds); the page polls it every LIVE_POLL_S


def _window() -> int:
    """``?window=`` in minutes (1–60; default 10, Cisco Spaces' "Right Now")."""
    raw = request.args.get("window")
    if raw is None or raw == "":
        return WINDOW_S
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WINDOW_S // 60:
        raise ReportError(f"window: whole minutes from 1 to {MAX_WINDOW_S // 60}, not {raw!r}")
    return int(raw) * 60


def _store_live(store_id: str, lang: str, window_s: int) -> dict[str, Any]:
    svc = _services()
    live = _reports().store_live(svc.engine, svc.cfg, store_id, svc.clock(), window_s)
    return views.live_view(lang, "store", live, svc.cfg.analytics.rules_for(store_id).min_dwell_s)


def _mall_live(mall_id: str, lang: str, window_s: int, mall_of: dict[str, str],
               names: dict[str, str]) -> dict[str, Any]:
    svc = _services()
    ids = sorted(sid for sid, m in mall_of.items() if m == mall_id)
    live = _reports().mall_live(svc.engine, svc.cfg, mall_id, ids, svc.clock(), window_s)
    return views.live_view(lang, "mall", live, svc.cfg.analytics.min_dwell_s, names)


def store_live(store_id: str, lang: str) -> dict[str, Any]:
    user = _require_user()
    _malls, mall_of, _stores = _tenants()
    access.check_store(user, store_id, mall_of)
    return _store_live(store_id, lang, _window())


def mall_live(mall_id: str, lang: str) -> dict[str, Any]:
    user = _require_user()
    malls, mall_of, stores = _tenants()
    access.check_mall(user, mall_id, malls)
    names = {sid: s["name"] or sid for sid, s in stores.items()}
    return _mall_live(mall_id, lang, _window(), mall_of, names)


def operator_numbers(lang: str) -> dict[str, Any]:
    access.check_operator(_require_user())
    malls, _mall_of, _stores = _tenants()
    cfg = _services().cfg
    start, end = _range(cfg.timezone)
    pstart, pend = views.previous_range(start, end)
    now = _services().clock()
    until = views.previous_until(start, end, cfg.timezone, now)
    rep, eng = _reports(), _services().engine
    return views.operator_view(lang, start, end, rep.operator_range(eng, start, end, cfg),
                               rep.operator_range(eng, pstart, pend, cfg, until), malls, until, cfg.timezone, now)


# --- API ------------------------------------------------------------------------------------------------------


@blueprint.errorhandler(ReportError)
def report_error(exc: ReportError) -> Any:
    if request.path.startswith("/api/"):
        name = {401: "login_required", 403: "forbidden", 404: "not_found"}.get(exc.status, "bad_request")
        return jsonify(error=name, message=str(exc)), exc.status
    lang = _lang()
    return render_template("dashboard/error.html", lang=lang, t=lambda k, **kw: i18n.t(lang, k, **kw),
                           message=i18n.t(lang, "forbidden") if exc.status == 403 else str(exc)), exc.status


@blueprint.get("/api/v1/dashboard/me")
@_login_required
def api_me() -> Any:
    """The logged-in user and the views they may open."""
    user = _require_user()
    malls, _mall_of, stores = _tenants()
    return jsonify(user={"name": user.name, "role": user.role, "mall_id": user.mall_id, "store_id": user.store_id},
                   **_visible(user, malls, stores))


def _visible(user: User, malls: dict[str, str], stores: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "operator": user.role == "admin",
        "malls": [{"id": m, "name": n or m} for m, n in malls.items() if user.can_see_mall(m)],
        "stores": [{"id": s, "name": v["name"] or s, "mall_id": v["mall_id"]} for s, v in stores.items()
                   if user.can_see_store(s, v["mall_id"])],
    }


@blueprint.get("/api/v1/stores/<store_id>/dashboard")
@_login_required
def api_store(store_id: str) -> Any:
    return _respond(store_numbers(store_id, _lang()), csv=False)


@blueprint.get("/api/v1/stores/<store_id>/dashboard.csv")
@_login_required
def api_store_csv(store_id: str) -> Any:
    return _respond(store_numbers(store_id, _lang()), csv=True)


@blueprint.get("/api/v1/stores/<store_id>/live")
@_login_required
def api_store_live(store_id: str) -> Any:
    """Live occupancy of a store (``?window=`` minutes)."""
    return _respond(store_live(store_id, _lang()), csv=False)


@blueprint.get("/api/v1/malls/<mall_id>/live")
@_login_required
def api_mall_live(mall_id: str) -> Any:
    """Live occupancy of a mall and of each of its stores (``?window=`` minutes)."""
    return _respond(mall_live(mall_id, _lang()), csv=False)


@blueprint.get("/api/v1/malls/<mall_id>/dashboard")
@_login_required
def api_mall(mall_id: str) -> Any:
    return _respond(mall_numbers(mall_id, _lang()), csv=False)


@blueprint.get("/api/v1/malls/<mall_id>/dashboard.csv")
@_login_required
def api_mall_csv(mall_id: str) -> Any:
    return _respond(mall_numbers(mall_id, _lang()), csv=True)


@blueprint.get("/api/v1/operator/dashboard")
@_login_required
def api_operator() -> Any:
    return _respond(operator_numbers(_lang()), csv=False)


@blueprint.get("/api/v1/operator/dashboard.csv")
@_login_required
def api_operator_csv() -> Any:
    return _respond(operator_numbers(_lang()), csv=True)


# --- pages ----------------------------------------------------------------------------------------------------


@blueprint.get("/dashboard")
@_login_required
def home() -> Any:
    kind, ident = access.home(_require_user())
    path = "/dashboard/operator" if ident is None else f"/dashboard/{kind}/{quote(ident, safe='')}"
    qs = request.query_string.decode()
    return redirect(path + ("?" + qs if qs else ""))


def _page(kind: str, ident: str | None, api: str) -> Any:
    user = _require_user()
    malls, mall_of, stores = _tenants()
    if kind == "store":
        assert ident is not None
        access.check_store(user, ident, mall_of)
    elif kind == "mall":
        assert ident is not None
        access.check_mall(user, ident, malls)
    else:
        access.check_operator(user)
    lang = _lang()
    live = {"store": url_for("dashboards.api_store_live", store_id=ident or "-"),
            "mall": url_for("dashboards.api_mall_live", mall_id=ident or "-")}.get(kind)
    config = {"kind": kind, "id": ident, "api": api, "live": live, "live_poll_s": LIVE_POLL_S, "lang": lang,
              "start": request.args.get("start"),
              "end": request.args.get("end"), "i18n": i18n.CATALOG[lang],
              "user": {"name": user.name, "role": user.role}, **_visible(user, malls, stores)}
    # sections a package above the dashboards registered for this kind of view (marketing's, say): links only
    sections = [{"href": s["path"].format(id=quote(ident, safe="")) + "?lang=" + lang,
                 "title": s["title"].get(lang, s["id"]), "id": s["id"]}
                for s in current_app.extensions.get("dashboards.sections", []) if s["kind"] == kind and ident]
    return render_template("dashboard/page.html", lang=lang, t=lambda k, **kw: i18n.t(lang, k, **kw),
                           config=config, kind=kind, user=user, sections=sections)


@blueprint.get("/dashboard/store/<store_id>")
@_login_required
def store_page(store_id: str) -> Any:
    return _page("store", store_id, url_for("dashboards.api_store", store_id=store_id))


@blueprint.get("/dashboard/mall/<mall_id>")
@_login_required
def mall_page(mall_id: str) -> Any:
    return _page("mall", mall_id, url_for("dashboards.api_mall", mall_id=mall_id))


@blueprint.get("/dashboard/operator")
@_login_required
def operator_page() -> Any:
    return _page("operator", None, url_for("dashboards.api_operator"))
