"""The admin identity of a request (an edge: Flask): :func:`current_user`, :func:`login_required`,
:func:`require_store`. The portal and the dashboards use it; neither needs the other for it.

The app's factory calls :func:`init_app` with the database engine and the clock. An API request (a path under
``/api/`` or one asking for JSON) without a login gets a 401 JSON body, a page a redirect to ``/admin/login``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from flask import Flask, abort, current_app, g, jsonify, redirect, request, session, url_for
from sqlalchemy.engine import Engine

from keliu.accounts.users import AdminUser, session_user


@dataclass(frozen=True)
class Accounts:
    engine: Engine
    clock: Callable[[], float]


def init_app(app: Flask, engine: Engine, clock: Callable[[], float]) -> None:
    app.extensions["keliu.accounts"] = Accounts(engine, clock)


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
        if current_user() is None:
            if wants_json():
                return jsonify(error="login_required", message="log in to the admin first"), 401
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def require_store(store_id: str, mall_id: str | None) -> AdminUser:
    user = current_user()
    if user is None or not user.can_see_store(store_id, mall_id):
        abort(403)
    return user
