"""WeChat's tables and their small queries (an edge: SQL over a Connection).

* ``wechat_identities``: one row per (official account ``app_id``, ``openid``) — openids differ per account — with
  the ``unionid`` that unifies a person across the accounts of one Open Platform, and the member it is bound to.
  Nickname and avatar are stored only after the member agreed to share them (scope ``snsapi_userinfo``).
* ``wechat_extend_used``: nonces of consumed ``extend`` tokens; the primary key makes single use atomic.
* ``wechat_releases``: when a device (keyed HMAC, never its MAC) got a temporary release, for the hourly cap.
* ``wechat_follows``: subscribe/unsubscribe events of official accounts, append-only, deduplicated (WeChat retries a
  push it got no answer to).
* ``wechat_member_cards``: the member card template (``card_id``) of each official account, no member data
  (:mod:`portal.wechat.card`: a member's card number is computed, not stored).
* ``wechat_card_members``: the member cards keliu activated (account, member, template, the card's code = the member
  card number, when): what a campaign's ``wechat_card`` channel needs to update a member's card
  (:mod:`portal.wechat.marketing_cards`); written on activation, deleted with the member.

Revisions live in ``portal/migrations/versions/wechat_*.py`` (branch ``wechat``).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

import portal.store.models  # noqa: F401  (members must be in the metadata for the foreign keys)
from keliu.db import Base

TS = sa.DateTime(timezone=True)


class WechatIdentity(Base):
    __tablename__ = "wechat_identities"
    __table_args__ = (sa.UniqueConstraint("app_id", "openid", name="uq_wechat_identities_app_id_openid"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(32))
    openid: Mapped[str] = mapped_column(sa.String(64))
    unionid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id"), index=True)
    nickname: Mapped[str] = mapped_column(sa.String(64), default="")
    headimgurl: Mapped[str] = mapped_column(sa.String(512), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class WechatExtendUsed(Base):
    __tablename__ = "wechat_extend_used"
    nonce: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS, index=True)


class WechatRelease(Base):
    __tablename__ = "wechat_releases"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    device_key: Mapped[str] = mapped_column(sa.String(32), index=True)
    ts: Mapped[datetime] = mapped_column(TS, index=True)


class WechatFollow(Base):
    __tablename__ = "wechat_follows"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "openid", "create_time", "event", name="uq_wechat_follows_push"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(64))  # the account's original id (ToUserName, gh_...)
    openid: Mapped[str] = mapped_column(sa.String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id"), index=True)
    #: "subscribe" or "unsubscribe"
    event: Mapped[str] = mapped_column(sa.String(16))
    #: WeChat's CreateTime (epoch seconds), part of the dedup key
    create_time: Mapped[int] = mapped_column(sa.BigInteger)
    ts: Mapped[datetime] = mapped_column(TS)


class WechatMemberCard(Base):
    """The member card template (``card/create``) of an official account: created once, on first use."""

    __tablename__ = "wechat_member_cards"
    app_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    card_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(TS)


class WechatCardMember(Base):
    """A member's member card that keliu activated in an official account's card holder (one per account)."""

    __tablename__ = "wechat_card_members"
    app_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), primary_key=True)
    card_id: Mapped[str] = mapped_column(sa.String(64))
    #: the card's code: the member card number (portal.wechat.card.card_number), never the phone
    code: Mapped[str] = mapped_column(sa.String(32))
    activated_at: Mapped[datetime] = mapped_column(TS)


identities = cast(sa.Table, WechatIdentity.__table__)
card_members = cast(sa.Table, WechatCardMember.__table__)
member_cards = cast(sa.Table, WechatMemberCard.__table__)
extend_used = cast(sa.Table, WechatExtendUsed.__table__)
releases = cast(sa.Table, WechatRelease.__table__)
follows = cast(sa.Table, WechatFollow.__table__)


def consume_nonce(conn: Connection, nonce: str, store_id: str, now: datetime, expires_at: datetime) -> bool:
    """Mark an extend nonce used. False when it was used before (a replay). Atomic by the primary key."""
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(extend_used).values(nonce=nonce, store_id=store_id, used_at=now,
                                                       expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def prune(conn: Connection, now: datetime) -> None:
    """Forget expired nonces (an expired token is rejected anyway) and releases older than a day."""
    conn.execute(sa.delete(extend_used).where(extend_used.c.expires_at < now - timedelta(hours=1)))
    conn.execute(sa.delete(releases).where(releases.c.ts < now - timedelta(days=1)))


def release_history(conn: Connection, device_key: str, now: datetime) -> list[float]:
    rows = conn.execute(sa.select(releases.c.ts).where(releases.c.device_key == device_key,
                                                       releases.c.ts > now - timedelta(hours=1)))
    return [_aware(r.ts).timestamp() for r in rows]


def record_release(conn: Connection, device_key: str, now: datetime) -> None:
    conn.execute(sa.insert(releases).values(device_key=device_key, ts=now))


def identity(conn: Connection, app_id: str, openid: str) -> sa.Row[tuple[object, ...]] | None:
    return conn.execute(sa.select(identities).where(identities.c.app_id == app_id,
                                                    identities.c.openid == openid)).first()


def upsert_identity(conn: Connection, app_id: str, openid: str, now: datetime, *, unionid: str | None = None,
                    nickname: str | None = None, headimgurl: str | None = None) -> int:
    """Create or refresh an identity; returns its id. Never unbinds a member."""
    row = identity(conn, app_id, openid)
    values: dict[str, object] = {"updated_at": now}
    if unionid:
        values["unionid"] = unionid
    if nickname is not None:
        values["nickname"] = nickname[:64]
    if headimgurl is not None:
        values["headimgurl"] = headimgurl[:512]
    if row is None:
        result = conn.execute(sa.insert(identities).values(app_id=app_id, openid=openid, created_at=now, **values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]
    conn.execute(sa.update(identities).where(identities.c.id == row.id).values(**values))
    return int(row.id)


def member_by_unionid(conn: Connection, unionid: str) -> int | None:
    """A member already bound through another account of the same Open Platform (会员统一)."""
    row = conn.execute(sa.select(identities.c.member_id).where(identities.c.unionid == unionid,
                                                               identities.c.member_id.is_not(None))
                       .order_by(identities.c.id).limit(1)).first()
    return None if row is None else int(row.member_id)


def bind(conn: Connection, identity_id: int, member_id: int, now: datetime) -> bool:
    """Bind an unbound identity to a member, once. False when it is already bound to a member."""
    result = conn.execute(sa.update(identities)
                          .where(identities.c.id == identity_id, identities.c.member_id.is_(None))
                          .values(member_id=member_id, updated_at=now))
    if result.rowcount == 1:
        return True
    row = conn.execute(sa.select(identities.c.member_id).where(identities.c.id == identity_id)).first()
    return row is not None and row.member_id == member_id


def record_follow(conn: Connection, *, account: str, openid: str, event: str, create_time: int, now: datetime,
                  member_id: int | None) -> bool:
    """Append a follow event; False when this exact push was recorded before (a WeChat retry)."""
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(follows).values(app_id=account, openid=openid, event=event,
                                                   create_time=create_time, ts=now, member_id=member_id))
    except IntegrityError:
        return False
    return True


def following(conn: Connection, account: str, openid: str) -> bool:
    row = conn.execute(sa.select(follows.c.event).where(follows.c.app_id == account, follows.c.openid == openid)
                       .order_by(follows.c.create_time.desc(), follows.c.id.desc()).limit(1)).first()
    return row is not None and row.event == "subscribe"


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were written as UTC.

    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def following_openid(conn: Connection, openid: str) -> bool:
    """Whether the latest follow event of this openid (any account) is a subscribe."""
    row = conn.execute(sa.select(follows.c.event).where(follows.c.openid == openid)
                       .order_by(follows.c.create_time.desc(), follows.c.id.desc()).limit(1)).first()
    return row is not None and row.event == "subscribe"
