"""Phone + SMS code login: request a code, verify it, become a member and get online (an edge).

:func:`request_code` and :func:`verify_code` hold the whole flow; the HTML form views here and the JSON views in
:mod:`portal.api` only translate requests. Every check happens before anything is stored, and a successful
verification stores code use, member, consents, login, device and session in one transaction before the Gate is
told (nothing half-way). Limits: resend cooldown and daily cap per phone, codes per IP and per device per hour,
verifications per IP per hour, tries per code.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, redirect, request

from portal import access, codes, i18n, limits, phone
from portal.access import Authorized
from portal.app import Services, services
from portal.clients import Client
from portal.errors import CodeRejected
from portal.members import Choices, upsert_member
from portal.models import sms_codes

log = logging.getLogger("keliu.portal")
bp = Blueprint("sms", __name__)


def request_code(svc: Services, client: Client, raw_phone: str, lang: str) -> str:
    """Send a code to ``raw_phone``; returns its E.164 form. Raises InvalidPhone, RateLimited, SmsFailed."""
    e164 = phone.normalize(raw_phone)
    cfg = svc.cfg.sms
    now = svc.now()
    ph = codes.phone_hash(svc.keys.pepper, e164)
    with svc.engine.begin() as conn:
        k_ip = limits.check(conn, svc.keys.token, "sms-ip", client.ip, cfg.per_ip_per_hour, 3600, now)
        k_dev = limits.check(conn, svc.keys.token, "sms-dev", client.device_id, cfg.per_client_per_hour, 3600, now)
        last, sent = conn.execute(sa.select(sa.func.max(sms_codes.c.created_at), sa.func.count()).where(
            sms_codes.c.phone_hash == ph, sms_codes.c.created_at > now - timedelta(days=1))).one()
        codes.may_send(last, int(sent), now, cfg.resend_s, cfg.daily_cap)
        code = codes.new_code()
        conn.execute(sa.insert(sms_codes).values(
            phone_hash=ph, code_hash=codes.code_hash(svc.keys.pepper, ph, code), device_id=client.device_id,
            created_at=now, expires_at=now + timedelta(seconds=cfg.code_ttl_s), tries=0, used_at=None))
        limits.count(conn, k_ip, now)
        limits.count(conn, k_dev, now)
        # inside the transaction: if the provider fails, no code row and no counted event remain
        svc.sms.send(e164, code, lang)
    log.info("sms code sent to %s", phone.mask(e164))
    return e164


def verify_code(svc: Services, client: Client, raw_phone: str, code: str, choices: Choices,
                lang: str) -> Authorized:
    """Check the code and log the client in. Raises InvalidPhone, ConsentMissing, CodeRejected, RateLimited."""
    e164 = phone.normalize(raw_phone)
    choices.require_terms()
    code = (code or "").strip()
    if not codes.valid_format(code):
        raise CodeRejected("the code is 6 digits", "code_wrong")
    cfg = svc.cfg.sms
    now = svc.now()
    ph = codes.phone_hash(svc.keys.pepper, e164)
    wrong = False
    with svc.engine.begin() as conn:
        limits.check_and_count(conn, svc.keys.token, [("verify-ip", client.ip)], cfg.verify_per_ip_per_hour, 3600,
                               now)
        row = conn.execute(sa.select(sms_codes).where(sms_codes.c.phone_hash == ph)
                           .order_by(sms_codes.c.id.desc()).limit(1)).first()
        state = None
        if row is not None and row.device_id == client.device_id:
            state = codes.CodeState(row.id, row.code_hash, row.expires_at, row.tries, row.used_at is not None)
        outcome = codes.verify(state, codes.code_hash(svc.keys.pepper, ph, code), now, cfg.max_tries)
        assert state is not None
        if outcome == "wrong":
            conn.execute(sa.update(sms_codes).where(sms_codes.c.id == state.id)
                         .values(tries=sms_codes.c.tries + 1))
            wrong = True
        else:
            used = conn.execute(sa.update(sms_codes).where(sms_codes.c.id == state.id, sms_codes.c.used_at.is_(None),
                                                           sms_codes.c.tries < cfg.max_tries)
                                .values(used_at=now)).rowcount
            if used != 1:
                raise CodeRejected("this code was already used; request a new one", "code_used")
            member_id = upsert_member(conn, store_id=svc.store_id, now=now, phone_e164=e164)
            auth = access.complete_login(conn, svc, client, member_id, "sms", choices, lang, now)
    if wrong:
        raise CodeRejected("wrong code", "code_wrong")
    access.allow(svc, client, auth.until)
    log.info("sms login %s device %s session %s", phone.mask(e164), client.device_id, auth.session_id)
    return auth


def choices_from_form() -> Choices:
    f = request.form
    return Choices(terms=f.get("terms") == "1", marketing=f.get("marketing") == "1",
                   analytics=f.get("analytics") == "1", reauth=f.get("reauth") == "1")


def form_lang() -> str:
    from portal.captive import lang

    raw = request.form.get("lang")
    return raw if raw in i18n.LANGS else lang()


@bp.route("/login/sms/code", methods=["POST"])
def code_form() -> Any:
    from portal.captive import render_splash

    svc = services()
    lg = form_lang()
    e164 = request_code(svc, svc.client(), request.form.get("phone", ""), lg)
    return render_splash(notice=i18n.gettext(lg, "code_sent"), phone=request.form.get("phone", "")[:32] or e164)


@bp.route("/login/sms/verify", methods=["POST"])
def verify_form() -> Any:
    svc = services()
    auth = verify_code(svc, svc.client(), request.form.get("phone", ""), request.form.get("code", ""),
                       choices_from_form(), form_lang())
    resp = redirect(auth.landing_url or "/status", 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp
