"""The SMS login's HTML forms (an edge: a Flask blueprint over :mod:`portal.store.sms_login`, which holds the flow
and its limits)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

import marketing
from portal.core import i18n
from portal.core.login_plan import CONSENT_KINDS, Choices
from portal.services import services
from portal.store.sms_login import request_code, verify_code
from portal.web.pages import after_login, lang, render_splash

bp = Blueprint("sms", __name__)


def choices_from_form() -> Choices:
    return Choices.of(frozenset(k for k in CONSENT_KINDS if request.form.get(k) == "1"))


def form_lang() -> str:
    raw = request.form.get("lang")
    return raw if raw in i18n.LANGS else lang()


@bp.route("/login/sms/code", methods=["POST"])
def code_form() -> Any:
    svc = services()
    lg = form_lang()
    e164 = request_code(svc, svc.client(), request.form.get("phone", ""), lg)
    return render_splash(notice=i18n.gettext(lg, "code_sent"), phone=request.form.get("phone", "")[:32] or e164)


@bp.route("/login/sms/verify", methods=["POST"])
def verify_form() -> Any:
    svc = services()
    auth = verify_code(svc, svc.client(), request.form.get("phone", ""), request.form.get("code", ""),
                       choices_from_form(), form_lang())
    marketing.login_committed(current_app, member_id=auth.member_id, store_id=svc.store_id, now=svc.now())
    return after_login(auth)
