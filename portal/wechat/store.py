"""WeChat identities ↔ members (an edge: SQL in the caller's transaction, through ``portal.store.members``).

* :func:`member_for_wifi`: the 连Wi-Fi ``openId`` → a member: the one its identity is bound to, else a new
  WeChat-only member (``portal.store.members.upsert_member(openid=...)``) that the identity is bound to.
* :func:`member_for_oauth`: a 网页授权 identity → its member if bound, else the member another identity with the same
  ``unionid`` is bound to (会员统一 across the mall's and the brands' accounts), else ``None`` (bind by SMS next).
* :func:`bind_phone`: bind an identity to the member of a verified phone, once.
* :func:`record_follow_event`: a subscribe/unsubscribe push against the member of that openid.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.errors import PortalError
from portal.services import services
from portal.store import members
from portal.wechat import models as wm

if TYPE_CHECKING:
    from portal.wechat.official_account import Push


class AlreadyBound(PortalError):
    """The WeChat identity is bound to another member who has a phone: binding happens once."""


def member_for_wifi(conn: Connection, *, app_id: str, openid: str, store_id: str, now: datetime) -> int:
    ident = wm.upsert_identity(conn, app_id, openid, now)
    row = conn.execute(sa.select(wm.identities.c.member_id).where(wm.identities.c.id == ident)).one()
    if row.member_id is not None:
        return int(row.member_id)
    member_id = members.upsert_member(conn, store_id=store_id, now=now, openid=openid)
    wm.bind(conn, ident, member_id, now)
    return member_id


def member_for_oauth(conn: Connection, *, identity_id: int, unionid: str | None, now: datetime) -> int | None:
    row = conn.execute(sa.select(wm.identities.c.member_id).where(wm.identities.c.id == identity_id)).one()
    if row.member_id is not None:
        return int(row.member_id)
    if unionid:
        other = wm.member_by_unionid(conn, unionid)
        if other is not None:
            wm.bind(conn, identity_id, other, now)
            return other
    return None


def bind_phone(conn: Connection, *, identity_id: int, phone_e164: str, store_id: str, now: datetime) -> int:
    """The member of ``phone_e164`` (created if new) gets this identity. An identity bound to a WeChat-only member
    (from a 连Wi-Fi login, no phone) moves to the phone's member; one bound to a member with a phone stays."""
    row = conn.execute(sa.select(wm.identities.c.member_id, wm.identities.c.unionid)
                       .where(wm.identities.c.id == identity_id)).one()
    member_id = members.upsert_member(conn, store_id=store_id, now=now, phone_e164=phone_e164,
                                      unionid=row.unionid)
    if row.member_id is None or int(row.member_id) == member_id:
        wm.bind(conn, identity_id, member_id, now)
        return member_id
    if members.phone_of(conn, int(row.member_id)) is not None:
        raise AlreadyBound("this WeChat account is already bound to another phone number")
    conn.execute(sa.update(wm.identities).where(wm.identities.c.id == identity_id,
                                                wm.identities.c.member_id == row.member_id)
                 .values(member_id=member_id, updated_at=now))
    return member_id


def member_of_openid(conn: Connection, openid: str) -> int | None:
    row = conn.execute(sa.select(wm.identities.c.member_id).where(wm.identities.c.openid == openid,
                                                                  wm.identities.c.member_id.is_not(None))
                       .limit(1)).first()
    return None if row is None else int(row.member_id)


def record_follow_event(push: Push) -> bool:
    """Record a follow/unfollow push (from the official-account endpoint). False for a WeChat retry."""

    svc = services()
    now = svc.now()
    with svc.engine.begin() as conn:
        return wm.record_follow(conn, account=push.account, openid=push.openid, event=push.event,
                                create_time=push.create_time, now=now,
                                member_id=member_of_openid(conn, push.openid))
