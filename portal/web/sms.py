"""Phone + SMS code login: request a code, verify it, become a member and get online (an edge).

:func:`request_code` and :func:`verify_code` hold the whole flow; the HTML form views here and the JSON views in
:mod:`portal.web.api` only translate requests. Every check happens before anything is stored, and a successful
verification stores code use, member, consents, login, device and session in one transaction before the Gate is
told (nothing half-way).

Limits, none of which a third party can turn against a number's owner: codes per source address and per device per
hour; per number *and* requesting device, a resend cooldown and a daily cap; per number, a daily cap from all devices
that only abuse reaches (``sms.phone_daily_cap``, more than two devices' worth). A code is bound to the device that
asked for it: verification reads the latest code of *this* device for the number, so another device's request
neither replaces nor uses it. Verifications per IP per hour; tries per code, counted under a row lock
(:func:`consume_code`, shared with the WeChat phone binding), so racing guesses cannot exceed them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Blueprint, redirect, request
from sqlalchemy.engine import Connection

from portal.core import codes, i18n, phone, sessions
from portal.core.i18n import CONSENT_VERSIONS
from portal.edges.clients import Client
from portal.errors import CodeRejected, RateLimited
from portal.services import Services, services
from portal.store import access, limits, privacy
from portal.store.access import Authorized
from portal.store.members import Choices, upsert_member
from portal.store.models import sms_codes
from portal.web.pages import lang, render_splash

log = logging.getLogger("keliu.portal")
bp = Blueprint("sms", __name__)
T = TypeVar("T")


def request_code(svc: Services, client: Client, raw_phone: str, lang: str) -> str:
    """Send a code to ``raw_phone``; returns its E.164 form. Raises InvalidPhone, RateLimited, SmsFailed."""
    e164 = phone.normalize(raw_phone)
    cfg = svc.cfg.sms
    now = svc.now()
    ph = codes.phone_hash(svc.keys.pepper, e164)
    with svc.engine.begin() as conn:
        k_ip = limits.check(conn, svc.keys.token, "sms-ip", client.ip, cfg.per_ip_per_hour, 3600, now)
        k_dev = limits.check(conn, svc.keys.token, "sms-dev", client.device_id, cfg.per_client_per_hour, 3600, now)
        mine = sms_codes.c.device_id == client.device_id
        last, sent, everyone = conn.execute(
            sa.select(sa.func.max(sms_codes.c.created_at).filter(mine), sa.func.count().filter(mine),
                      sa.func.count())
            .where(sms_codes.c.phone_hash == ph, sms_codes.c.created_at > now - timedelta(days=1))).one()
        codes.may_send(last, int(sent), int(everyone), now, cfg.resend_s, cfg.daily_cap, cfg.phone_daily_cap)
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


#: the latest code this device asked for, for a phone, locked until the transaction ends (built once: a login should
#: not pay for building its statements). The lock makes a code's check one at a time: a concurrent attempt waits,
#: then reads the tries and the use this one stored, so racing guesses never get more than ``max_tries`` looks.
#: Ordered by ``id + 0``, not ``id``: otherwise PostgreSQL may walk the primary key backwards through every code
#: stored, filtering on the phone hash (it does without fresh statistics: 13 ms with 40,000 codes), instead of
#: taking the phone's and device's few codes from the ``(phone_hash, device_id)`` index and sorting them.
_LATEST_CODE = (sa.select(sms_codes.c.id, sms_codes.c.code_hash, sms_codes.c.expires_at, sms_codes.c.tries,
                          sms_codes.c.used_at)
                .where(sms_codes.c.phone_hash == sa.bindparam("ph", type_=sa.String),
                       sms_codes.c.device_id == sa.bindparam("device", type_=sa.String))
                .order_by((sms_codes.c.id + 0).desc()).limit(1).with_for_update())
_WRONG_TRY = (sa.update(sms_codes).where(sms_codes.c.id == sa.bindparam("code_id", type_=sa.Integer))
              .values(tries=sms_codes.c.tries + 1))
#: no ``tries`` condition needed: the row is locked since :func:`codes.verify` saw it under the limit
_USE_CODE = (sa.update(sms_codes).where(sms_codes.c.id == sa.bindparam("code_id", type_=sa.Integer),
                                        sms_codes.c.used_at.is_(None))
             .values(used_at=sa.bindparam("now", type_=sms_codes.c.used_at.type)))

#: PostgreSQL: the verification limit taken (``limits.take``) and the latest code of the phone and device, locked
#: (as ``_LATEST_CODE``), in one round trip
_TAKE_AND_LATEST_PG = sa.text("""
WITH taken AS (
    INSERT INTO rate_events (key, ts)
    SELECT CAST(:key AS varchar), CAST(:now AS timestamptz)
    WHERE (SELECT count(*) FROM rate_events WHERE key = :key AND ts > CAST(:since AS timestamptz)) < :limit
    RETURNING id
)
SELECT (SELECT count(*) FROM taken) AS taken, c.id, c.code_hash, c.expires_at, c.tries, c.used_at
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
    SELECT id, code_hash, expires_at, tries, used_at FROM sms_codes
    WHERE phone_hash = :ph AND device_id = :device
    ORDER BY id + 0 DESC LIMIT 1  -- as _LATEST_CODE: by the (phone_hash, device_id) index
    FOR UPDATE
) AS c ON true
""").columns(sa.column("taken", sa.Integer), sms_codes.c.id, sms_codes.c.code_hash, sms_codes.c.expires_at,
             sms_codes.c.tries, sms_codes.c.used_at)

#: PostgreSQL: everything a successful SMS login stores, in one statement (one round trip instead of nine). It
#: writes exactly what the portable path below writes (code use, ``members.upsert_member``,
#: ``access.complete_login``: consents, the sensor registry's consent (c) as ``privacy.link_for_analytics``,
#: login, device with its (MAC . IP) binding, session, landing URL taken out), and nothing at all unless the code could be marked used. ``tests/portal/test_sms_login.py`` checks that both paths store the same rows.
_LOGIN_PG = sa.text("""
WITH used AS (
    UPDATE sms_codes SET used_at = CAST(:now AS timestamptz)
    WHERE id = :code_id AND used_at IS NULL AND tries < :max_tries
    RETURNING id
), member AS (
    INSERT INTO members (phone_e164, wechat_openid, wechat_unionid, created_at, first_store_id, last_seen_at)
    SELECT CAST(:phone AS varchar), NULL, NULL, CAST(:now AS timestamptz), CAST(:store AS varchar),
           CAST(:now AS timestamptz) FROM used
    ON CONFLICT (phone_e164) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
    RETURNING id
), consent AS (
    INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang)
    SELECT member.id, c.kind, c.version, c.granted, CAST(:now AS timestamptz), CAST(:store AS varchar),
           CAST(:lang AS varchar)
    FROM member, (VALUES ('terms', CAST(:v_terms AS varchar), CAST(:g_terms AS boolean)),
                         ('marketing', CAST(:v_marketing AS varchar), CAST(:g_marketing AS boolean)),
                         ('analytics', CAST(:v_analytics AS varchar), CAST(:g_analytics AS boolean)),
                         ('reauth', CAST(:v_reauth AS varchar), CAST(:g_reauth AS boolean)))
         AS c(kind, version, granted)
), login AS (
    INSERT INTO logins (ts, store_id, member_id, device_id, method, ip)
    SELECT CAST(:now AS timestamptz), CAST(:store AS varchar), member.id, CAST(:device AS varchar), 'sms',
           CAST(:ip AS varchar) FROM member
), other_stores AS (
    -- the re-authorization choice is per device, whichever store it was made in (this store's row: below;
    -- one statement must not modify a row twice)
    UPDATE devices SET reauth_until = CAST(:reauth_until AS timestamptz)
    WHERE device_id = :device AND store_id <> :store AND EXISTS (SELECT 1 FROM used)
), device AS (
    -- with the (MAC . IP) binding of this login in this store, as access.bound_at_login
    INSERT INTO devices (device_id, member_id, store_id, first_seen, last_seen, reauth_until, bound_ip, lease_tag)
    SELECT CAST(:device AS varchar), member.id, CAST(:store AS varchar), CAST(:now AS timestamptz),
           CAST(:now AS timestamptz), CAST(:reauth_until AS timestamptz), CAST(:bound_ip AS varchar),
           CAST(:lease_tag AS varchar) FROM member
    ON CONFLICT (device_id, store_id) DO UPDATE
    SET last_seen = EXCLUDED.last_seen, member_id = EXCLUDED.member_id, reauth_until = EXCLUDED.reauth_until,
        bound_ip = EXCLUDED.bound_ip, lease_tag = EXCLUDED.lease_tag
), replaced AS (
    UPDATE portal_sessions SET ended_at = CAST(:now AS timestamptz), end_reason = 'replaced'
    WHERE device_id = :device AND ended_at IS NULL AND EXISTS (SELECT 1 FROM used)
), opened AS (
    INSERT INTO portal_sessions (member_id, device_id, store_id, ip, method, started_at, until, last_activity,
                                 bytes_up, bytes_down)
    SELECT member.id, CAST(:device AS varchar), CAST(:store AS varchar), CAST(:ip AS varchar), 'sms',
           CAST(:now AS timestamptz), CAST(:until AS timestamptz), CAST(:now AS timestamptz), 0, 0 FROM member
    RETURNING id, member_id
), landing AS (
    DELETE FROM landing_urls WHERE device_id = :device AND EXISTS (SELECT 1 FROM used) RETURNING url
), registered AS (
    -- consent (c), as privacy.link_for_analytics: the stable id registered as a member's (an opt-out stays) ...
    INSERT INTO sensor_device_registry (device_id, kind, since)
    SELECT CAST(:reg_id AS varchar), 'member', CAST(:reg_since AS double precision) FROM used
    WHERE CAST(:g_analytics AS boolean) AND CAST(:reg_id AS varchar) IS NOT NULL
    ON CONFLICT (device_id) DO NOTHING
), withdrawn AS (
    -- ... or, without the tick, a member's registration withdrawn
    DELETE FROM sensor_device_registry
    WHERE device_id = :reg_id AND kind = 'member' AND NOT CAST(:g_analytics AS boolean)
      AND EXISTS (SELECT 1 FROM used)
)
SELECT opened.id, opened.member_id, (SELECT url FROM landing) AS url FROM opened
""")


def _store_login_pg(conn: Connection, svc: Services, client: Client, code_id: int, e164: str, choices: Choices,
                    lang: str, now: datetime) -> Authorized:
    until = sessions.grant_until(svc.policy, now)
    bound = access.bound_at_login(svc, client, now)
    params: dict[str, Any] = {
        "now": now, "code_id": code_id, "max_tries": svc.cfg.sms.max_tries, "phone": e164, "store": svc.store_id,
        "lang": lang, "device": client.device_id, "ip": client.ip, "until": until,
        "reauth_until": now + timedelta(seconds=svc.policy.reauth_s) if choices.reauth else None,
        "reg_id": privacy.registry_id(svc, client.mac) if client.mac else None, "reg_since": now.timestamp(),
        "bound_ip": bound.ip, "lease_tag": bound.lease_tag,
    }
    choices.require_terms()
    for kind, version in CONSENT_VERSIONS.items():
        params[f"v_{kind}"] = version
        params[f"g_{kind}"] = bool(getattr(choices, kind))
    row = conn.execute(_LOGIN_PG, params).first()
    if row is None:
        raise CodeRejected("this code was already used; request a new one", "code_used")
    return Authorized(int(row.id), int(row.member_id), until, None if row.url is None else str(row.url))


def _take_and_latest(conn: Connection, svc: Services, client: Client, ph: str, now: datetime) -> Any:
    """Count this attempt against the per-IP verification limit (RateLimited, counting nothing, if it is
    reached), then the latest code this device asked for, for the phone, locked (``None`` if none). SQLite has no
    row locks, but the limit's insert comes first, which makes the transaction the database's one writer."""
    limit = svc.cfg.sms.verify_per_ip_per_hour
    if conn.dialect.name != "postgresql":
        limits.take(conn, svc.keys.token, "verify-ip", client.ip, limit, 3600, now)
        return conn.execute(_LATEST_CODE, {"ph": ph, "device": client.device_id}).first()
    row = conn.execute(_TAKE_AND_LATEST_PG, {
        "key": limits.key_of(svc.keys.token, "verify-ip", client.ip), "now": now,
        "since": now - timedelta(seconds=3600), "limit": limit, "ph": ph, "device": client.device_id}).one()
    if row.taken != 1:
        limits.check(conn, svc.keys.token, "verify-ip", client.ip, limit, 3600, now)  # raises, with the wait
        raise RateLimited("too many requests, try again later", 3600, "rate_limited")  # fail closed
    return None if row.id is None else row


def consume_code(svc: Services, client: Client, e164: str, code: str,
                 use: Callable[[Connection, int, datetime], T]) -> T:
    """The one check of an SMS code, for the SMS login and the WeChat phone binding alike.

    In one transaction: the per-IP verification limit, this device's latest code for ``e164`` read under a row
    lock, the decision (:func:`codes.verify`), then either a wrong try counted (and CodeRejected "code_wrong" after
    the commit) or ``use(conn, code_id, now)``, which must mark the code used (:func:`mark_used`, or the
    one-statement login) and may store more, all committed together. Raises CodeRejected, RateLimited."""
    code = (code or "").strip()
    if not codes.valid_format(code):
        raise CodeRejected("the code is 6 digits", "code_wrong")
    now = svc.now()
    ph = codes.phone_hash(svc.keys.pepper, e164)
    entered = codes.code_hash(svc.keys.pepper, ph, code)
    with svc.engine.begin() as conn:
        row = _take_and_latest(conn, svc, client, ph, now)
        state = None if row is None else codes.CodeState(row.id, row.code_hash, row.expires_at, row.tries,
                                                         row.used_at is not None)
        outcome = codes.verify(state, entered, now, svc.cfg.sms.max_tries)
        assert state is not None
        if outcome == "ok":
            return use(conn, state.id, now)
        conn.execute(_WRONG_TRY, {"code_id": state.id})
    raise CodeRejected("wrong code", "code_wrong")  # after the commit: the try stays counted


def mark_used(conn: Connection, code_id: int, now: datetime) -> None:
    """Mark a code used (inside :func:`consume_code`, which holds its row lock)."""
    if conn.execute(_USE_CODE, {"code_id": code_id, "now": now}).rowcount != 1:
        raise CodeRejected("this code was already used; request a new one", "code_used")


def verify_code(svc: Services, client: Client, raw_phone: str, code: str, choices: Choices,
                lang: str) -> Authorized:
    """Check the code and log the client in. Raises InvalidPhone, ConsentMissing, CodeRejected, RateLimited."""
    e164 = phone.normalize(raw_phone)
    choices.require_terms()

    def store_login(conn: Connection, code_id: int, now: datetime) -> Authorized:
        if conn.dialect.name == "postgresql":
            return _store_login_pg(conn, svc, client, code_id, e164, choices, lang, now)
        mark_used(conn, code_id, now)
        member_id = upsert_member(conn, store_id=svc.store_id, now=now, phone_e164=e164)
        return access.complete_login(conn, svc, client, member_id, "sms", choices, lang, now)

    auth = consume_code(svc, client, e164, code, store_login)
    access.allow(svc, client, auth.until)
    log.info("sms login %s device %s session %s", phone.mask(e164), client.device_id, auth.session_id)
    return auth


def choices_from_form() -> Choices:
    f = request.form
    return Choices(terms=f.get("terms") == "1", marketing=f.get("marketing") == "1",
                   analytics=f.get("analytics") == "1", reauth=f.get("reauth") == "1")


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
    resp = redirect(auth.landing_url or "/status", 303)
    resp.headers["Cache-Control"] = "no-store"
    return resp
