"""One member system across stores and malls: members, devices, consents, login records (an edge: SQL).

Every function takes an open connection inside the caller's transaction, so a login is stored completely or not
at all. Used by the SMS login (``portal.web.sms``) and the WeChat login (``portal.wechat.views``):

- :func:`upsert_member` by E.164 phone or by WeChat openid → member id;
- :func:`record_consent` (versioned, appended: a decision after login; those taken at login are the login plan's);
- :func:`record_login`, :func:`touch_device`, :func:`bound_of` (the binding a re-authorization checks).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu import db
from portal.core.binding import Bound
from portal.core.i18n import CONSENT_VERSIONS
from portal.errors import BadRequest
from portal.store.models import consents, devices, logins, members


def upsert_member(conn: Connection, *, store_id: str, now: datetime, phone_e164: str | None = None,
                  openid: str | None = None, unionid: str | None = None) -> int:
    """The member with this phone (or openid), created on first sight. Returns its id. One statement:
    ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (PostgreSQL and SQLite), safe against a concurrent first login."""
    if phone_e164 is None and openid is None:
        raise BadRequest("a member needs a phone number or a WeChat openid")
    col = members.c.phone_e164 if phone_e164 is not None else members.c.wechat_openid
    update: dict[str, Any] = {"last_seen_at": now}
    if unionid:
        update["wechat_unionid"] = unionid
    stmt = db.dialect_insert(conn, members).values(phone_e164=phone_e164, wechat_openid=openid, wechat_unionid=unionid,
                                created_at=now, first_store_id=store_id, last_seen_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=[col], set_=update).returning(members.c.id)
    return int(conn.execute(stmt).scalar_one())


def record_consent(conn: Connection, member_id: int, store_id: str, kind: str, granted: bool, lang: str,
                   now: datetime) -> None:
    """One decision on its own (a withdrawal, say), versioned like those taken at login."""
    conn.execute(sa.insert(consents).values(**_consent_row(member_id, store_id, kind, granted, lang, now)))


def _consent_row(member_id: int, store_id: str, kind: str, granted: bool, lang: str,
                 now: datetime) -> dict[str, Any]:
    return {"member_id": member_id, "kind": kind, "version": CONSENT_VERSIONS[kind], "granted": granted,
            "ts": now, "store_id": store_id, "lang": lang}


def current_consents(conn: Connection, member_id: int) -> dict[str, bool]:
    """The latest decision per kind."""
    rows = conn.execute(sa.select(consents.c.kind, consents.c.granted)
                        .where(consents.c.member_id == member_id).order_by(consents.c.id)).all()
    return {r.kind: bool(r.granted) for r in rows}


def record_login(conn: Connection, *, member_id: int, store_id: str, device_id: str, method: str, ip: str,
                 now: datetime) -> None:
    conn.execute(sa.insert(logins).values(ts=now, store_id=store_id, member_id=member_id, device_id=device_id,
                                          method=method, ip=ip))


def touch_device(conn: Connection, *, device_id: str, member_id: int | None, store_id: str, now: datetime,
                 reauth_until: datetime | None = None, set_reauth: bool = False,
                 bound: Bound | None = None) -> None:
    """First/last seen of a device in a store; links it to the member, sets (or clears) re-authorization and, at
    a login, the (MAC . IP) binding in this store (``bound``)."""
    if set_reauth:
        # the choice is per device, whichever store it was made in
        conn.execute(sa.update(devices).where(devices.c.device_id == device_id).values(reauth_until=reauth_until))
    values: dict[str, object] = {"last_seen": now}
    if member_id is not None:
        values["member_id"] = member_id
    if set_reauth:
        values["reauth_until"] = reauth_until
    if bound is not None:
        values["bound_ip"] = bound.ip
        values["lease_tag"] = bound.lease_tag
    stmt = db.dialect_insert(conn, devices).values(device_id=device_id, store_id=store_id, first_seen=now, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[devices.c.device_id, devices.c.store_id], set_=values))


def reauth_member(conn: Connection, device_id: str, now: datetime) -> int | None:
    """The member whose device may be re-authorized without SMS now, if any."""
    row = conn.execute(sa.select(devices.c.member_id).where(
        devices.c.device_id == device_id, devices.c.member_id.is_not(None), devices.c.reauth_until > now)
        .order_by(devices.c.last_seen.desc()).limit(1)).first()
    return None if row is None else int(row.member_id)


def bound_of(conn: Connection, device_id: str, store_id: str) -> Bound | None:
    """The device's binding in this store, stored at its last SMS or WeChat login there."""
    row = conn.execute(sa.select(devices.c.bound_ip, devices.c.lease_tag).where(
        devices.c.device_id == device_id, devices.c.store_id == store_id)).first()
    return None if row is None or row.bound_ip is None else Bound(str(row.bound_ip), row.lease_tag)


def phone_of(conn: Connection, member_id: int) -> str | None:
    row = conn.execute(sa.select(members.c.phone_e164).where(members.c.id == member_id)).first()
    return None if row is None else row.phone_e164
