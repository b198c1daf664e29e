"""The admin identity of a request (an edge: Flask): :func:`current_user`, :func:`login_required`,
:func:`console_required`, :func:`require_store`; and the console's shared navigation (:func:`console_nav`, the
template ``keliu/nav.html``). The portal's admin and the dashboards use both; neither needs the other for it.

The app's factory calls :func:`init_app` with the database engine and the clock. An API request (a path under
``/api/`` or one asking for JSON) without a login gets a 401 JSON body, a page a redirect to ``/admin/login``. A
user whose password was generated for them (``must_change``) gets nothing but the password page until they chose
one (an API answer: 403 ``password_change_required``). Staff serve a store's counter: every console page answers
them 403.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    request,
    session,
    url_for,
)
from sqlalchemy.engine import Engine

from keliu.accounts import i18n
from keliu.accounts.users import AdminUser, session_user

#: the page where a user changes their password, and the pages a user with a generated password may still open
PASSWORD_PAGE = "/admin/password"
_WHILE_MUST_CHANGE = {"auth.password", "auth.logout", "auth.login"}
#: where staff land (the store's counter)
COUNTER_PAGE = "/counter"

#: only its templates (``keliu/nav.html``): both the portal's and the dashboards' pages include them
templates = Blueprint("keliu_accounts", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/console/static")


@templates.get("/favicon.ico")
def favicon() -> Any:
    """Every page's icon (a PNG: browsers take one at this address), so no page logs a 404 for it."""
    assert templates.static_folder is not None
    resp = make_response((Path(templates.static_folder) / "favicon.png").read_bytes())
    resp.headers["Content-Type"] = "image/png"
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp


@dataclass(frozen=True)
class Accounts:
    engine: Engine
    clock: Callable[[], float]


def init_app(app: Flask, engine: Engine, clock: Callable[[], float]) -> None:
    app.extensions["keliu.accounts"] = Accounts(engine, clock)
    app.register_blueprint(templates)
    app.add_template_global(console_nav)


def _accounts() -> Accounts:
    return cast(Accounts, current_app.extensions["keliu.accounts"])


def wants_json() -> bool:
    """Whether the client of this request wants JSON rather than a page."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def current_user() -> AdminUser | None:
    """The admin user of this request, or ``None``."""
    if "admin_user" in g:
        return cast("AdminUser | None", g.admin_user)
    sid = session.get("admin_sid")
    user = None
    if isinstance(sid, str) and sid:
        acc = _accounts()
        user = session_user(acc.engine, sid, datetime.fromtimestamp(acc.clock(), tz=UTC))
    g.admin_user = user
    return user


F = TypeVar("F", bound=Callable[..., Any])


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            if wants_json():
                return jsonify(error="login_required", message="log in to the admin first"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if user.must_change and request.endpoint not in _WHILE_MUST_CHANGE:
            if wants_json():
                return jsonify(error="password_change_required",
                               message=f"choose a new password first ({PASSWORD_PAGE})"), 403
            return redirect(PASSWORD_PAGE + "?" + urlencode({"next": request.full_path.rstrip("?")}))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def console_required(view: F) -> F:
    """A console page (admin, dashboard): logged in, and not staff (they serve the counter only: 403)."""

    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is not None and user.role == "staff":
            abort(403)
        return view(*args, **kwargs)

    return login_required(cast(F, inner))


def console_lang() -> str:
    """The console's language: ``?lang=``, else the ``lang`` cookie (the splash's too), else ``Accept-Language``,
    else zh-CN."""
    for explicit in (request.args.get("lang"), request.cookies.get("lang")):
        if explicit in i18n.LANGS:
            return str(explicit)
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return "en" if best is not None and best.startswith("en") else i18n.DEFAULT


def console_nav(active: str, lang: str | None = None) -> dict[str, Any]:
    """What ``keliu/nav.html`` shows: the links the user may follow (``active`` marked), the user, the link to the
    same page in the other language. Every link carries the language, so the admin and the dashboard keep it."""
    lang = lang or console_lang()
    user = current_user()
    links: list[tuple[str, str, str]] = []
    if user is not None and not user.must_change:
        if user.role == "staff":
            links.append(("counter", COUNTER_PAGE, "nav_counter"))
        else:
            links += [("dashboard", "/dashboard", "nav_dashboard"), ("online", "/admin", "nav_online"),
                      ("splash", "/admin/splash", "nav_splash"), ("members", "/admin/members", "nav_members"),
                      ("campaigns", "/admin/campaigns", "nav_campaigns")]
            if user.role in ("admin", "mall"):
                links += [("users", "/admin/users", "nav_users"), ("audit", "/admin/audit", "nav_audit")]
    if user is not None:
        links.append(("password", PASSWORD_PAGE, "nav_password"))
    other = "en" if lang == "zh-CN" else "zh-CN"
    args = {k: v for k, v in request.args.items() if k != "lang"}
    args["lang"] = other
    return {
        "lang": lang,
        "t": lambda key, **kw: i18n.t(lang, key, **kw),
        "links": [{"key": k, "href": f"{href}?lang={lang}", "text": i18n.t(lang, label), "active": k == active}
                  for k, href, label in links],
        "user": user,
        "role": i18n.t(lang, f"role_{user.role}") if user is not None else "",
        "other_lang": request.path + "?" + urlencode(args),
    }


def require_store(store_id: str, mall_id: str | None) -> AdminUser:
    user = current_user()
    if user is None or not user.can_see_store(store_id, mall_id):
        abort(403)
    return user
