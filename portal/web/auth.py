"""The console's login, logout and password pages (an edge: a Flask blueprint over :mod:`keliu.accounts`), and
:func:`render_console`, how every console page of the portal is drawn (the shared navigation, zh-CN or English).

Staff land on the store's counter (``/counter``), everyone else on ``?next=`` or the admin. A user with a generated
password (the first admin's, or one from ``keliu user add`` without ``--password-stdin``) is sent to the password
page by :func:`keliu.accounts.web.login_required` until they chose their own; a new password ends every other
login of the user.

Failed login attempts slow down the address they come from (:func:`portal.store.limits.login_wait_s`); successes
are not counted, and no one can lock a user name out of an address they have not used. The demo admin
(``[portal] admin_user`` with ``admin_password`` or the generated ``var/keys/admin_password``) is written into
``admin_users`` at start-up by the factory.
"""
from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from keliu.accounts import i18n as console
from keliu.accounts.users import change_password, check_login, close_session, open_session, password_problem
from keliu.accounts.web import COUNTER_PAGE, console_lang, current_user, login_required
from portal.core.redirects import safe_next
from portal.services import services
from portal.store import limits


def next_page() -> str:
    """Where to go after the login: ``?next=`` if it is a local path (:func:`portal.core.redirects.safe_next`)."""
    return safe_next(request.args.get("next"), "/admin")


def render_console(template: str, active: str, status: int = 200, **context: Any) -> Any:
    """A console page in the user's language (``?lang=`` is remembered in the ``lang`` cookie, as the splash
    does), with the shared navigation (``active``: the link to mark)."""
    lang = console_lang()
    html = render_template(template, lang=lang, active=active, t=lambda k, **kw: console.t(lang, k, **kw),
                           **context)
    resp = make_response(html, status)
    if request.args.get("lang") in console.LANGS:
        resp.set_cookie("lang", request.args["lang"], max_age=365 * 86400, samesite="Lax", httponly=True)
    resp.headers["Content-Language"] = lang
    return resp


def _landing(role: str) -> str:
    if role == "staff":
        nxt = request.args.get("next") or ""
        return nxt if nxt.startswith(COUNTER_PAGE) and safe_next(nxt, "") == nxt else COUNTER_PAGE
    return next_page()


def _attempt(name: str) -> tuple[int, list[Any]]:
    """Before a password check of ``name`` (a login, or the current password of a change): how long this address
    must still wait, else the failure already counted (taken back with ``limits.forget`` on success)."""
    svc = services()
    per, window, now = svc.cfg.portal.admin_login_per_15min, 900, svc.now()
    address = request.remote_addr or ""
    secret = svc.keys.token
    with svc.engine.begin() as conn:
        wait = limits.login_wait_s(limits.failures(conn, secret, "admin-fail-ip", address, window, now),
                                   limits.failures(conn, secret, "admin-fail-user", name, window, now).count,
                                   per, window, now)
        # counted as a failure before the (slow) password check and taken back on success, so that attempts from
        # one address running in parallel mostly see each other (only those checking at the same instant do not)
        pending = [] if wait else limits.record(conn, secret, [("admin-fail-ip", address),
                                                               ("admin-fail-user", name)], now)
    return wait, pending


# --- views ----------------------------------------------------------------------------------------------------

bp = Blueprint("auth", __name__)


@bp.route("/admin/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        name = request.form.get("name", "")[:64]
        password = request.form.get("password", "")[:256]
        svc = services()
        now = svc.now()
        wait, pending = _attempt(name)
        if wait:
            resp = render_console("admin_login.html", "", 429, error=console.t(console_lang(), "err_too_many"),
                                  next=next_page())
            resp.headers["Retry-After"] = str(wait)
            return resp
        user = check_login(svc.engine, name, password)
        if user is not None:
            # a success is not counted, and does not wipe this address's failures either: else any user with a
            # login of their own could reset their address's backoff between guesses at another name
            with svc.engine.begin() as conn:
                limits.forget(conn, pending)
            session.clear()
            session["admin_sid"] = open_session(svc.engine, user.name, now, current_app.permanent_session_lifetime)
            session.permanent = True
            return redirect(_landing(user.role))
        error = console.t(console_lang(), "err_login")
    return render_console("admin_login.html", "", 401 if error else 200, error=error, next=next_page())


@bp.route("/admin/logout", methods=["POST"])
def logout() -> Any:
    sid = session.get("admin_sid")
    if isinstance(sid, str) and sid:
        close_session(services().engine, sid)
    session.clear()
    g.pop("admin_user", None)
    return redirect(url_for("auth.login"))




@bp.route("/admin/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    """Every user's own password change (the old one is needed); the forced one after a generated password."""
    user = current_user()
    assert user is not None
    lang = console_lang()
    nxt = safe_next(request.args.get("next"), COUNTER_PAGE if user.role == "staff" else "/admin")
    if nxt.startswith("/admin/password"):
        nxt = "/admin"
    error = None
    if request.method == "POST":
        old, new, new2 = (request.form.get(k, "")[:300] for k in ("old", "new", "new2"))
        problem = password_problem(new)
        if problem:
            error = console.t(lang, "err_password_short" if problem.startswith("at least") else
                              "err_password_long" if problem.startswith("at most") else "err_password_chars")
        elif new != new2:
            error = console.t(lang, "err_mismatch")
        elif new == old:
            error = console.t(lang, "err_same")
        else:
            svc = services()
            # guesses at the current password back off like failed logins
            wait, pending = _attempt(user.name)
            if wait:
                error = console.t(lang, "err_too_many")
            elif not change_password(svc.engine, user.name, old, new):
                error = console.t(lang, "err_old_password")
            else:
                with svc.engine.begin() as conn:
                    limits.forget(conn, pending)
                # the change ended every login of the user, this one too: open a fresh one for this browser
                session.clear()
                g.pop("admin_user", None)
                session["admin_sid"] = open_session(svc.engine, user.name, svc.now(),
                                                    current_app.permanent_session_lifetime)
                session.permanent = True
                return redirect(nxt, 303)
    return render_console("admin_password.html", "password", 400 if error else 200, user=user, error=error,
                          forced=user.must_change, next=nxt)
