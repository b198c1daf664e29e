"""The portal's tables (declarations only; queries live in the edge modules that use them).

One member system across stores and malls (会员统一): a member is keyed by the normalized E.164 phone (or, for a
WeChat login, by the openid) and belongs to no single store. Devices are HMAC device ids (``sensor.identity``),
never MAC addresses; there is one device row per device and store (first/last seen per store). Phone numbers
appear only in ``members``; SMS codes and rate-limit keys are keyed hashes. Every timestamp is timezone-aware UTC.

Analytics reads ``members`` and ``logins`` for the funnel (docs/CONTRACTS.md).
"""
from __future__ import annotations

from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from keliu.db import TS, Base


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    phone_e164: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    wechat_openid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    wechat_unionid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    first_store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(TS)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (sa.UniqueConstraint("device_id", "store_id", name="uq_devices_device_id_store_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id"), index=True)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    first_seen: Mapped[datetime] = mapped_column(TS)
    last_seen: Mapped[datetime] = mapped_column(TS)
    #: seamless re-authorization (无感认证) allowed until then, if the member agreed to it
    reauth_until: Mapped[datetime | None] = mapped_column(TS)
    #: the IPv4 address of the device's last SMS or WeChat login in this store, and a keyed hash of the DHCP
    #: client id and host name of its lease then (portal.core.binding; None: the lease was not confirmed): seamless
    #: re-authorization needs the same pair again
    bound_ip: Mapped[str | None] = mapped_column(sa.String(45))
    lease_tag: Mapped[str | None] = mapped_column(sa.String(16))


class Login(Base):
    __tablename__ = "logins"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(TS, index=True)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    device_id: Mapped[str] = mapped_column(sa.String(32))
    #: "sms", "wechat", "reauth"
    method: Mapped[str] = mapped_column(sa.String(16))
    #: the client's LAN address at login (network log duty, MPS Order 82)
    ip: Mapped[str] = mapped_column(sa.String(45), default="")


class Consent(Base):
    """One decision of a member on one versioned text: rows are appended, never updated."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    #: one of ``portal.core.login_plan.CONSENT_KINDS``: "terms" (required), "marketing", "analytics", "reauth" (optional)
    kind: Mapped[str] = mapped_column(sa.String(16))
    version: Mapped[str] = mapped_column(sa.String(32))
    granted: Mapped[bool] = mapped_column(sa.Boolean)
    ts: Mapped[datetime] = mapped_column(TS)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"))
    lang: Mapped[str] = mapped_column(sa.String(8), default="zh-CN")
    #: None: decided on the portal; otherwise where an imported decision's evidence came from (``keliu member
    #: import``: a CRM, a paper form), with the evidence's date in ``ts`` and its text's version in ``version``
    source: Mapped[str | None] = mapped_column(sa.String(64))


class MemberRegistry(Base):
    """The sensor registry ids (``sensor.identity.member_device_id``) a member's consent (c) registered: the only
    link from a member to the stable device ids in the sensor's registry and in sightings, kept (after a withdrawal
    too) so that deleting the member can erase them."""

    __tablename__ = "member_registry"
    registry_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), primary_key=True, index=True)
    since: Mapped[datetime] = mapped_column(TS)


class SmsCode(Base):
    __tablename__ = "sms_codes"
    #: a code is looked up by number *and* the device that asked for it (the prefix serves per-number counts)
    __table_args__ = (sa.Index("ix_sms_codes_phone_hash_device_id", "phone_hash", "device_id"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    #: HMAC(sms_pepper, phone): the phone itself is never stored here
    phone_hash: Mapped[str] = mapped_column(sa.String(64))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    #: the device that asked for the code: only it can use the code
    device_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(TS, index=True)
    expires_at: Mapped[datetime] = mapped_column(TS)
    tries: Mapped[int] = mapped_column(sa.Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(TS)


class PortalSession(Base):
    """An authorization of one device: the source of truth the Gate is reconciled to."""

    __tablename__ = "portal_sessions"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id"), index=True)
    device_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    ip: Mapped[str] = mapped_column(sa.String(45))
    method: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(TS)
    until: Mapped[datetime] = mapped_column(TS)
    last_activity: Mapped[datetime] = mapped_column(TS)
    bytes_up: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    ended_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    #: "logout", "kick", "expired", "idle", "replaced", "reconcile"
    end_reason: Mapped[str | None] = mapped_column(sa.String(16))


class LandingUrl(Base):
    """The plain-HTTP URL a client first asked for, offered after login (kept here, never read from a query)."""

    __tablename__ = "landing_urls"
    device_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2048))
    ts: Mapped[datetime] = mapped_column(TS)


class SplashContent(Base):
    __tablename__ = "splash_content"
    store_id: Mapped[str] = mapped_column(sa.ForeignKey("stores.id"), primary_key=True)
    #: the Chinese title and offer (the default language); ``*_en`` the English ones (empty: the Chinese text)
    title: Mapped[str] = mapped_column(sa.String(100), default="")
    offer: Mapped[str] = mapped_column(sa.String(500), default="")
    title_en: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    offer_en: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    #: the store's terms page (《上网服务条款》); empty: the default text of ``portal.core.terms``
    terms_zh: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    terms_en: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    #: the logo's bytes (PNG, JPEG or WebP, checked by magic bytes, size-capped) and its media type
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    logo_type: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    #: accent colour, "#rrggbb"
    color: Mapped[str] = mapped_column(sa.String(7), default="#d9363e")
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(sa.String(64), default="")


class RateEvent(Base):
    """One counted event of a rate limit; ``key`` is a keyed hash (of an IP, a device, a phone)."""

    __tablename__ = "rate_events"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), index=True)
    ts: Mapped[datetime] = mapped_column(TS, index=True)


members = cast(sa.Table, Member.__table__)
devices = cast(sa.Table, Device.__table__)
logins = cast(sa.Table, Login.__table__)
consents = cast(sa.Table, Consent.__table__)
member_registry = cast(sa.Table, MemberRegistry.__table__)
sms_codes = cast(sa.Table, SmsCode.__table__)
portal_sessions = cast(sa.Table, PortalSession.__table__)
landing_urls = cast(sa.Table, LandingUrl.__table__)
splash_content = cast(sa.Table, SplashContent.__table__)
rate_events = cast(sa.Table, RateEvent.__table__)
