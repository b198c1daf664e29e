"""The member's own rights pages under ``/member/data`` (an edge: a Flask blueprint over
:mod:`portal.store.rights`): see and download their data (JSON, and a readable page), withdraw consents, change
their phone number (the new number verified by SMS), delete their account after a confirmation.

The logged-in member is ``flask.session["member_id"]`` (an int), set by the member login; :func:`member_required`
reads it (the member card's guard does the same). zh-CN by default, English on ``?lang=en``; phone-sized.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, current_app, g, make_response, redirect, render_template, request, session

from portal.core import phone as phones
from portal.core import rights_text
from portal.edges.clients import Client
from portal.errors import BadRequest, PortalError
from portal.services import services
from portal.store import rights
from portal.store.sms_login import consume_code, mark_used, request_code
from portal.web.pages import lang

bp = Blueprint("member_rights", __name__, url_prefix="/member/data")
F = TypeVar("F", bound=Callable[..., Any])


def components() -> list[rights.Component]:
    return cast(list[rights.Component], current_app.extensions["keliu.member_components"])


def _render(template: str, status: int = 200, **kw: Any) -> Any:
    lg = lang()
    resp = make_response(render_template(template, lang=lg, t=lambda k: rights_text.t(lg, k), **kw), status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Language"] = lg
    return resp


def member_required(view: F) -> F:
    """The member of this browser session (``g.member_id``), or a page asking to log in (401)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        mid = session.get("member_id")
        if not isinstance(mid, int) or isinstance(mid, bool):
            return _render("member_message.html", 401, message=rights_text.t(lang(), "login_needed"), error=True)
        with services().engine.connect() as conn:
            try:
                rights.member_row(conn, mid)
            except PortalError:
                session.pop("member_id", None)
                return _render("member_message.html", 401, message=rights_text.t(lang(), "login_needed"), error=True)
        g.member_id = mid
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _export() -> dict[str, Any]:
    svc = services()
    with svc.engine.connect() as conn:
        return rights.export(conn, g.member_id, components(), svc.now())


def _error(exc: PortalError) -> str:
    msg = rights_text.t(lang(), "err_" + exc.code)
    return exc.message if msg == "err_" + exc.code else msg


def _page(notice: str | None = None, error: str | None = None, status: int = 200) -> Any:
    data = _export()
    return _render("member_data.html", status, data=data, masked=phones.mask(data["member"]["phone"]),
                   kinds=rights.WITHDRAWABLE, notice=notice, error=error)


@bp.get("")
@member_required
def page() -> Any:
    done = request.args.get("done")
    return _page(notice=rights_text.t(lang(), "phone_changed") if done == "phone" else None)


@bp.get("/export.json")
@member_required
def download() -> Any:
    data = _export()
    resp = make_response(json.dumps(data, ensure_ascii=False, indent=2))
    resp.headers["Content-Type"] = "application/json; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="keliu-member-{g.member_id}.json"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/all")
@member_required
def readable() -> Any:
    data = _export()
    return _render("member_data_all.html", sections=rights_text.sections(data, lang()), data=data)


@bp.post("/withdraw")
@member_required
def withdraw() -> Any:
    kind = request.form.get("kind", "")
    svc = services()
    try:
        with svc.engine.begin() as conn:
            rights.withdraw(conn, g.member_id, [kind], svc.store_id, lang(), svc.now())
    except PortalError as exc:
        return _page(error=_error(exc), status=exc.status)
    return _page(notice=rights_text.t(lang(), "withdrawn"))


def _page_client() -> Client:
    # the page may be used from anywhere (no MAC): the code is bound to the member's page instead of a device
    return Client(mac="", ip=request.remote_addr or "", device_id=rights.page_device(g.member_id))


@bp.route("/phone", methods=["GET", "POST"])
@member_required
def change_phone() -> Any:
    """Two steps, both posting the new number (kept in the form, never in the session cookie): ``action=code``
    sends a code to it, ``action=verify`` checks the code and changes the number in the code's transaction."""
    svc = services()
    if request.method == "GET":
        return _render("member_phone.html", pending=None, notice=None, error=None)
    lg = lang()
    raw = request.form.get("phone", "")[:32]
    pending = None
    try:
        e164 = phones.normalize(raw)
        if request.form.get("action") == "verify":
            pending = e164

            def use(conn: Any, code_id: int, now: Any) -> None:
                mark_used(conn, code_id, now)
                rights.change_phone(conn, g.member_id, e164)

            consume_code(svc, _page_client(), e164, request.form.get("code", ""), use)
            return redirect(f"/member/data?done=phone&lang={lg}", 303)
        with svc.engine.connect() as conn:
            other = rights.find(conn, e164)
        if other is not None and other != g.member_id:
            raise BadRequest("this number belongs to another member", "phone_taken")
        request_code(svc, _page_client(), e164, lg)
        return _render("member_phone.html", pending=e164, raw=raw, notice=rights_text.t(lg, "code_sent"), error=None)
    except PortalError as exc:
        return _render("member_phone.html", exc.status, pending=pending, raw=raw, notice=None, error=_error(exc))


@bp.post("/delete")
@member_required
def delete() -> Any:
    if request.form.get("confirm") != "1":
        return _page(error=rights_text.t(lang(), "err_confirm"), status=400)
    svc = services()
    rights.delete_member(svc, g.member_id, components(), f"member:{g.member_id}", request.remote_addr)
    session.pop("member_id", None)
    return _render("member_message.html", message=rights_text.t(lang(), "deleted"), error=False)
