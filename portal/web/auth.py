"""The admin login page and logout (an edge: a Flask blueprint over :mod:`keliu.accounts`).

Failed login attempts slow down the address they come from (:func:`portal.store.limits.login_wait_s`); successes
are not counted, and no one can lock a user name out of an address they have not used. The demo admin
(``[portal] admin_user`` with ``admin_password`` or the generated ``var/keys/admin_password``) is written into
``admin_users`` at start-up by the factory.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from keliu.accounts.users import check_login, close_session, open_session
from portal.core.redirects import safe_next
from portal.services import services
from portal.store import limits


def next_page() -> str:
    """Where to go after the login: ``?next=`` if it is a local path (:func:`portal.core.redirects.safe_next`)."""
    return safe_next(request.args.get("next"), "/admin")


# --- views ----------------------------------------------------------------------------------------------------

bp = Blueprint("auth", __name__)


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")[:64]
        password = request.form.get("password", "")[:256]
        svc = services()
        per, window, now = svc.cfg.portal.admin_login_per_15min, 900, svc.now()
        address = request.remote_addr or ""
        secret = svc.keys.token
        with svc.engine.begin() as conn:
            wait = limits.login_wait_s(limits.failures(conn, secret, "admin-fail-ip", address, window, now),
                                       limits.failures(conn, secret, "admin-fail-user", name, window, now).count,
                                       per, window, now)
            # counted as a failure before the (slow) password check and taken back on success, so that attempts
            # from one address running in parallel mostly see each other (only those checking at the same instant
            # do not)
            pending = [] if wait else limits.record(conn, secret, [("admin-fail-ip", address),
                                                                   ("admin-fail-user", name)], now)
        if wait:
            return render_template("admin_login.html", error="too many attempts, try again later",
                                   next=next_page()), 429, {"Retry-After": str(wait)}
        user = check_login(svc.engine, name, password)
        if user is not None:
            # a success is not counted, and does not wipe this address's failures either: else any user with a
            # login of their own could reset their address's backoff between guesses at another name
            with svc.engine.begin() as conn:
                limits.forget(conn, pending)
            session.clear()
            session["admin_sid"] = open_session(svc.engine, user.name, now, current_app.permanent_session_lifetime)
            session.permanent = True
            return redirect(next_page())
        error = "wrong user name or password"
    return render_template("admin_login.html", error=error, next=next_page()), (
        401 if error else 200)


@bp.route("/admin/logout", methods=["POST"])
def logout() -> Any:
    sid = session.get("admin_sid")
    if isinstance(sid, str) and sid:
        close_session(services().engine, sid)
    session.clear()
    g.pop("admin_user", None)
    return redirect(url_for("auth.login"))


