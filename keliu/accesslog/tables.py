"""The access log's tables (declarations only). The migration is ``portal/migrations/versions/accesslog_0001``.

``access_log`` is the one place where a member's phone and a device's MAC address are written next to each other
and to an address (MPS Order 82); nothing else reads it but :mod:`keliu.accesslog.store`. Rows are only ever
appended (and, after the retention period, purged from the oldest end). ``accesslog_head`` is one row: the last
``seq`` and ``hash``, locked by every append so that concurrent writers extend the chain one after another.
"""
from __future__ import annotations

from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from keliu.db import TS, Base


class AccessRecord(Base):
    __tablename__ = "access_log"
    __table_args__ = (
        # who used public address A, port P at T: the block's latest record at or before T
        sa.Index("ix_access_log_public_ip_port_lo_ts", "public_ip", "port_lo", "ts"),
        sa.Index("ix_access_log_ip_ts", "ip", "ts"),
        sa.Index("ix_access_log_phone_ts", "phone", "ts"),
        sa.Index("ix_access_log_mac_ts", "mac", "ts"),
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(TS, index=True)
    #: login, reauth, logout, kick, expired, idle, reconcile, extend; query, export (the authorities' use);
    #: anchor, purge (the chain's own)
    event: Mapped[str] = mapped_column(sa.String(16))
    store_id: Mapped[str | None] = mapped_column(sa.String(64))
    session_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    member_id: Mapped[int | None] = mapped_column(sa.Integer)
    #: E.164; a WeChat login without a phone is identified by ``account`` (``wx:<openid>``)
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    account: Mapped[str | None] = mapped_column(sa.String(160))
    mac: Mapped[str | None] = mapped_column(sa.String(17))
    #: the device's LAN address, and the public address and source-port block its connections are translated to
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    public_ip: Mapped[str | None] = mapped_column(sa.String(45))
    port_lo: Mapped[int | None] = mapped_column(sa.Integer)
    port_hi: Mapped[int | None] = mapped_column(sa.Integer)
    started_at: Mapped[datetime | None] = mapped_column(TS)
    ended_at: Mapped[datetime | None] = mapped_column(TS)
    #: the login method; or a query's criteria, an anchor's or a purge's signed statement (JSON)
    detail: Mapped[str | None] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class ChainHead(Base):
    __tablename__ = "accesslog_head"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


access_log = cast(sa.Table, AccessRecord.__table__)
accesslog_head = cast(sa.Table, ChainHead.__table__)
