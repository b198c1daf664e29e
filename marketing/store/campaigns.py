"""The campaign tables (revision ``campaigns_0001``).

- ``campaigns``: what to send, to whom (trigger and segment), through which channel, with which holdout share.
- ``campaign_members``: each eligible member's arm, decided once at eligibility (marketing.core.holdout). No foreign
  keys (revision ``campaign_members_0001``): a trigger inserts up to millions of rows in one statement, and
  PostgreSQL checks a foreign key by one query per row. The writers keep the references true instead: enrolling
  locks the campaign's row and holds :func:`marketing.store.audience.enrollment_lock` (shared); erasing a member
  (marketing.store.erasure) holds it exclusively while it deletes the member's rows, so no enrollment that began
  before the member was deleted can add one after. A campaign is archived, never deleted; code that deletes one
  deletes its ``campaign_members`` rows in the same transaction.
- ``campaign_sends``: one row per (campaign, step, member), written before anything is sent: the unique key is what
  makes a retried or doubled task send nothing twice. ``status``: ``pending`` → ``reserved`` (counted against the
  caps; the channel may now be called) → ``sent`` / ``failed``; or ``suppressed`` with its ``reason``; or
  ``control`` (the holdout's would-have-sent event).
- ``contact_counts``: pushes per member per local day, per channel and in all (``channel`` = ``*``); raised only by
  one conditional increment each (marketing.store.contact).
- ``splash_messages``: a message queued for the member's next Wi-Fi success page (one per send, unique).
- ``sms_replies``: the SMS provider's inbound replies, once each (the provider's id of the reply is unique); the
  member id only, never the number or the text.

Revision ``campaigns_0002_execution`` adds the campaign's ``params`` (trigger, segment and consent basis, JSON) and
``message`` (the channel's content, JSON) — the one place a campaign's definition lives, written by
marketing.store.campaign_admin and read by marketing.execution and the console —, its webhook secret, who created,
changed and approved it, and a send's ``attempts``, ``lease_until``,
``provider_ref`` and ``error`` (marketing.execution). Revision ``campaigns_0003_campfeat`` adds the send's
``coupon_id``: the coupon of the campaign's offer issued for it (one per send).
"""
from __future__ import annotations

from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from keliu.db import TS, Base


class CampaignRow(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    store_id: Mapped[str | None] = mapped_column(sa.ForeignKey("stores.id"), index=True)
    mall_id: Mapped[str | None] = mapped_column(sa.ForeignKey("malls.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: "login_first", "login_return", "visit", "dwell", "lapsed", "expiring", "scheduled"
    trigger: Mapped[str] = mapped_column(sa.String(16))
    channel: Mapped[str] = mapped_column(sa.String(16))
    #: marketing.core.sms_rules.CATEGORIES
    category: Mapped[str] = mapped_column(sa.String(16))
    #: "draft", "approved", "paused", "archived"
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    control_share: Mapped[float] = mapped_column(sa.Float, default=0.10)
    salt: Mapped[str] = mapped_column(sa.String(32))
    cooldown_s: Mapped[int] = mapped_column(sa.Integer, default=86400)
    window_days: Mapped[int] = mapped_column(sa.Integer, default=7)
    created_at: Mapped[datetime] = mapped_column(TS)
    #: the trigger's parameters, the segment and the consent basis, JSON (marketing.core.campaign_spec.Params)
    params: Mapped[str] = mapped_column(sa.Text, default="{}", server_default="{}")
    #: the channel's content, JSON (marketing.core.campaign_spec.Content)
    message: Mapped[str] = mapped_column(sa.Text, default="{}", server_default="{}")
    #: HMAC-SHA256 key of the signed webhook (generated at creation; shown to the receiver's owner once)
    webhook_secret: Mapped[str | None] = mapped_column(sa.String(64))
    #: the console user (or script) who created and last changed it (marketing.store.campaign_admin)
    created_by: Mapped[str | None] = mapped_column(sa.String(64))
    updated_by: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime | None] = mapped_column(TS)
    approved_by: Mapped[str | None] = mapped_column(sa.String(64))
    approved_at: Mapped[datetime | None] = mapped_column(TS)


class CampaignMemberRow(Base):
    __tablename__ = "campaign_members"
    # no foreign keys (revision campaign_members_0001): see the module's docstring
    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, index=True)
    #: "treatment" or "control"
    arm: Mapped[str] = mapped_column(sa.String(16))
    eligible_at: Mapped[datetime] = mapped_column(TS)


class CampaignSendRow(Base):
    __tablename__ = "campaign_sends"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "step", "member_id", name="uq_campaign_sends_once"),
                      sa.Index("ix_campaign_sends_status_lease", "status", "lease_until"))
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(sa.Integer, default=0)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(48))
    ts: Mapped[datetime] = mapped_column(TS)
    #: calls of the channel so far (a send whose worker died is tried again once its lease ran out)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    #: while ``sending``: the instant after which another worker may take the send over
    lease_until: Mapped[datetime | None] = mapped_column(TS)
    #: the channel's id of the message (SMS serial number, WeChat msgid, …)
    provider_ref: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.String(200))
    #: the coupon of the campaign's offer this send carries (revision ``campaigns_0003_campfeat``): issued when the
    #: send is leased, in the lease's transaction, so a retried or re-leased send finds it and issues no second one
    coupon_id: Mapped[int | None] = mapped_column(sa.ForeignKey("coupons.id", name="fk_campaign_sends_coupon_id_coupons"),
                                                  index=True)


class ContactCountRow(Base):
    __tablename__ = "contact_counts"
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    #: the member's local day (the store's time zone), ISO
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    #: a push channel, or "*" for every channel together
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    n: Mapped[int] = mapped_column(sa.Integer)


class SplashMessageRow(Base):
    __tablename__ = "splash_messages"
    __table_args__ = (sa.UniqueConstraint("send_id", name="uq_splash_messages_send_id"),
                      sa.Index("ix_splash_messages_member_id", "member_id", "shown_at"))
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    send_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign_sends.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(sa.Integer)
    store_id: Mapped[str | None] = mapped_column(sa.String(64))
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TS)
    shown_at: Mapped[datetime | None] = mapped_column(TS)


class SmsReplyRow(Base):
    __tablename__ = "sms_replies"
    __table_args__ = (sa.UniqueConstraint("provider", "provider_ref", name="uq_sms_replies_provider_ref"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    provider_ref: Mapped[str] = mapped_column(sa.String(64))
    member_id: Mapped[int | None] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"), index=True)
    refusal: Mapped[bool] = mapped_column(sa.Boolean)
    received_at: Mapped[datetime] = mapped_column(TS)


campaigns = cast(sa.Table, CampaignRow.__table__)
campaign_members = cast(sa.Table, CampaignMemberRow.__table__)
campaign_sends = cast(sa.Table, CampaignSendRow.__table__)
contact_counts = cast(sa.Table, ContactCountRow.__table__)
splash_messages = cast(sa.Table, SplashMessageRow.__table__)
sms_replies = cast(sa.Table, SmsReplyRow.__table__)
