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
    __table_args__ = (sa.UniqueConstraint("campaign_id", "step", "member_id", name="uq_campaign_sends_once"),)
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(sa.Integer, default=0)
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(48))
    ts: Mapped[datetime] = mapped_column(TS)


class ContactCountRow(Base):
    __tablename__ = "contact_counts"
    member_id: Mapped[int] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    #: the member's local day (the store's time zone), ISO
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    #: a push channel, or "*" for every channel together
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    n: Mapped[int] = mapped_column(sa.Integer)


campaigns = cast(sa.Table, CampaignRow.__table__)
campaign_members = cast(sa.Table, CampaignMemberRow.__table__)
campaign_sends = cast(sa.Table, CampaignSendRow.__table__)
contact_counts = cast(sa.Table, ContactCountRow.__table__)
