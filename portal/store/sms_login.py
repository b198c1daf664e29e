"""Phone + SMS code login: request a code, verify it, become a member and get online (an edge: SQL, the SMS
provider, the Gate).

:func:`request_code` and :func:`verify_code` hold the whole flow; the HTML form views (:mod:`portal.web.sms`) and
the JSON views (:mod:`portal.web.api`) only translate requests. Every check happens before anything is stored, and a successful
verification stores code use, member, consents, login, device and session in one transaction before the Gate is
told (nothing half-way): the login's plan (:mod:`portal.core.login_plan`), stored by :mod:`portal.store.login_store`.

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
from sqlalchemy.engine import Connection

from portal.core import codes, phone
from portal.core.login_plan import Authorized, Choices, PhoneMember, UseCode
from portal.edges.clients import Client
from portal.errors import CodeRejected, RateLimited
from portal.services import Services
from portal.store import access, limits
from portal.store.models import sms_codes

log = logging.getLogger("keliu.portal")
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


def _take_and_latest_statement() -> sa.Select[Any]:
    """PostgreSQL: the verification limit taken (:data:`portal.store.limits.TAKE`, as a CTE) and the latest code of the
    phone and device, locked (``_LATEST_CODE``, laterally joined so that a phone without a code still gets the
    count), in one round trip."""
    taken = limits.TAKE.cte("taken")
    latest = _LATEST_CODE.lateral("c")
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    return (sa.select(sa.select(sa.func.count()).select_from(taken).scalar_subquery().label("taken"),
                      latest.c.id, latest.c.code_hash, latest.c.expires_at, latest.c.tries, latest.c.used_at)
            .select_from(one.outerjoin(latest, sa.true())))


_TAKE_AND_LATEST_PG = _take_and_latest_statement()


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
    the commit) or ``use(conn, code_id, now)``, which must mark the code used (:func:`mark_used`, or a login
    plan's executor, :mod:`portal.store.login_store`) and may store more, all committed together. Raises CodeRejected,
    RateLimited."""
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
        auth = access.complete_login(conn, svc, client, UseCode(code_id, svc.cfg.sms.max_tries), PhoneMember(e164),
                                     "sms", choices, lang, now)
        if auth is None:
            raise CodeRejected("this code was already used; request a new one", "code_used")
        return auth

    auth = consume_code(svc, client, e164, code, store_login)
    access.allow(svc, client, auth.until)
    log.info("sms login %s device %s session %s", phone.mask(e164), client.device_id, auth.session_id)
    return auth
