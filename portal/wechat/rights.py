"""What the WeChat tables hold of a member, for the member's export and deletion (an edge: SQL; the
:class:`portal.store.rights.Component` of WeChat, in this layer because the store may not import WeChat's tables).

Deletion forgets the member's WeChat identities (openid, unionid, nickname, avatar URL), their official-account
follow events (by member and by those openids), their activated member cards and the 微信连Wi-Fi release history of
their own devices.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.store import rights
from portal.wechat.models import card_members, follows, identities, releases


def _openids(conn: Connection, member_id: int) -> list[str]:
    row = rights.member_row(conn, member_id)
    mine = identities.c.member_id == member_id
    if row.wechat_unionid:
        mine = sa.or_(mine, identities.c.unionid == row.wechat_unionid)
    ids = set(conn.execute(sa.select(identities.c.openid).where(mine)).scalars())
    if row.wechat_openid:
        ids.add(row.wechat_openid)
    return sorted(ids)


def export_member(conn: Connection, member_id: int) -> dict[str, Any]:
    def rows(q: Any) -> list[dict[str, Any]]:
        return [{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()}
                for r in conn.execute(q).mappings().all()]

    openids = _openids(conn, member_id)
    return {
        "identities": rows(sa.select(identities.c.app_id, identities.c.openid, identities.c.unionid,
                                     identities.c.nickname, identities.c.headimgurl, identities.c.created_at,
                                     identities.c.updated_at).where(identities.c.member_id == member_id)),
        "follows": rows(sa.select(follows.c.app_id, follows.c.event, follows.c.ts)
                        .where(sa.or_(follows.c.member_id == member_id, follows.c.openid.in_(openids)))
                        .order_by(follows.c.id)),
        "member_cards": rows(sa.select(card_members.c.app_id, card_members.c.card_id, card_members.c.code,
                                       card_members.c.activated_at).where(card_members.c.member_id == member_id)
                             .order_by(card_members.c.app_id)),
    }


def erase_member(conn: Connection, member_id: int) -> None:
    openids = _openids(conn, member_id)
    conn.execute(sa.delete(card_members).where(card_members.c.member_id == member_id))
    conn.execute(sa.delete(follows).where(sa.or_(follows.c.member_id == member_id, follows.c.openid.in_(openids))))
    conn.execute(sa.delete(identities).where(sa.or_(identities.c.member_id == member_id,
                                                    identities.c.openid.in_(openids))))
    own = rights.own_devices(conn, member_id)
    conn.execute(sa.delete(releases).where(releases.c.device_key.in_(own)))


COMPONENT = rights.Component("wechat", export_member, erase_member)
