"""The member page's WeChat login (an edge: a Flask blueprint): WeChat web authorization (网页授权, the
``wechat`` blueprint's ``/wechat/oauth``) ends here, and the member it names is logged in on the member page
(:func:`portal.web.member.sign_in`, the ``session["member_id"]`` convention).

A WeChat identity not yet bound to a member goes through ``/wechat/bind`` (its phone, once, by SMS code) and comes
back. Registered only when WeChat is enabled.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, redirect, session, url_for

from portal.services import services
from portal.web.member import sign_in
from portal.wechat import models as wm

log = logging.getLogger("keliu.wechat")
blueprint = Blueprint("wechat_member", __name__, url_prefix="/member/wechat")


@blueprint.get("")
def start() -> Any:
    """Ask WeChat who this is (silently, ``snsapi_base``), then come back to :func:`done`."""
    return redirect(url_for("wechat.oauth", next=url_for("wechat_member.done")))


@blueprint.get("/done")
def done() -> Any:
    ident = session.get("wechat_identity")
    if not isinstance(ident, int) or isinstance(ident, bool):
        return redirect(url_for("wechat_member.start"))
    svc = services()
    with svc.engine.connect() as conn:
        row = conn.execute(wm.identities.select().where(wm.identities.c.id == ident)).first()
    if row is None:
        session.pop("wechat_identity", None)
        return redirect(url_for("wechat_member.start"))
    if row.member_id is None:
        return redirect(url_for("wechat.bind", next=url_for("wechat_member.done")))
    sign_in(int(row.member_id))
    log.info("member page login by WeChat, identity %s", ident)
    return redirect(url_for("member.index"), 303)
