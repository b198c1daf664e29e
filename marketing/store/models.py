"""The marketing tables (declarations only; created by ``marketing/migrations/versions/0001_marketing_offers.py``).

- ``offers``: the spec (:class:`marketing.core.offers.OfferSpec`) and its counters (``issued_count``,
  ``spent_cents``), which only ever move by one conditional ``UPDATE … SET n = n ± k WHERE <limit holds>``;
- ``offer_stores``: where an offer may be redeemed (several stores of one mall: the trade-area library);
- ``offer_days``: the discount spent per offer and local day (the daily budget);
- ``member_offers``: per member and offer, coupons issued and redeemed (the per-member limits);
- ``coupons``: one row per code; ``state`` issued → redeemed / expired / voided (a rollback puts it back to issued);
  ``redemption_id`` is the ledger row of the redemption in force;
- ``redemptions``: the append-only ledger (kind ``redeem`` or ``rollback``; a rollback's ``reverses_id`` names the
  redemption it undoes, unique so nothing is undone twice; ``(store_id, idempotency_key)`` unique);
- ``sales``: POS sales and refunds, unique on ``(store_id, txn_id)``; a refund's ``refund_of_id`` is its sale;
  ``member_id`` only from a deterministic match (``match``: ``qr``, ``coupon``, ``phone``), never a guess;
- ``pos_imports``: one row per imported file (counts; the rejected rows are reported to the caller, not stored).

Member ids are the portal's ``members.id`` (a foreign key by table name: marketing never imports the portal).
Phone numbers are never stored here. Every timestamp is timezone-aware UTC (:data:`keliu.db.TS`).
"""
from __future__ import annotations

import sqlalchemy as sa

from keliu.db import TS, Base

meta = Base.metadata

offers = sa.Table(
    "offers", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mall_id", sa.ForeignKey("malls.id"), nullable=False, index=True),
    sa.Column("store_id", sa.ForeignKey("stores.id"), nullable=False, index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("min_spend_cents", sa.BigInteger, nullable=False),
    sa.Column("max_discount_cents", sa.BigInteger),
    sa.Column("valid_from", sa.Date),
    sa.Column("valid_to", sa.Date),
    sa.Column("valid_days", sa.Integer),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("budget_total_cents", sa.BigInteger),
    sa.Column("budget_daily_cents", sa.BigInteger),
    sa.Column("max_issued", sa.Integer),
    sa.Column("per_member_issue_limit", sa.Integer),
    sa.Column("per_member_use_limit", sa.Integer),
    sa.Column("stackable", sa.Boolean, nullable=False),
    sa.Column("on_login", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("issued_count", sa.Integer, nullable=False),
    sa.Column("spent_cents", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
)

offer_stores = sa.Table(
    "offer_stores", meta,
    sa.Column("offer_id", sa.ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("store_id", sa.ForeignKey("stores.id"), primary_key=True, index=True),
)

offer_days = sa.Table(
    "offer_days", meta,
    sa.Column("offer_id", sa.ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("spent_cents", sa.BigInteger, nullable=False),
)

member_offers = sa.Table(
    "member_offers", meta,
    sa.Column("member_id", sa.ForeignKey("members.id"), primary_key=True),
    sa.Column("offer_id", sa.ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("issued", sa.Integer, nullable=False),
    sa.Column("used", sa.Integer, nullable=False),
)

coupons = sa.Table(
    "coupons", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("offer_id", sa.ForeignKey("offers.id"), nullable=False, index=True),
    sa.Column("member_id", sa.ForeignKey("members.id"), index=True),
    sa.Column("store_id", sa.ForeignKey("stores.id"), nullable=False),
    #: "login" (Wi-Fi success page), "staff", "api", "campaign"
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("issued_by", sa.String(64)),
    sa.Column("issued_at", TS, nullable=False),
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
    #: "issued", "redeemed", "expired", "voided"
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("state_at", TS, nullable=False),
    sa.Column("redemption_id", sa.Integer),
    # the sweep marketing.expire_due reads the issued coupons by their end (revision marketing_0002)
    sa.Index("ix_coupons_issued_expires_at", "expires_at", postgresql_where=sa.text("state = 'issued'"),
             sqlite_where=sa.text("state = 'issued'")),
)

redemptions = sa.Table(
    "redemptions", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    #: "redeem" or "rollback"
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("coupon_id", sa.ForeignKey("coupons.id"), nullable=False, index=True),
    sa.Column("offer_id", sa.ForeignKey("offers.id"), nullable=False, index=True),
    sa.Column("member_id", sa.ForeignKey("members.id"), index=True),
    sa.Column("store_id", sa.ForeignKey("stores.id"), nullable=False),
    #: the admin/staff user name, or ``token:<name>`` for an API token
    sa.Column("staff", sa.String(80), nullable=False),
    #: "api", "counter", "pos"
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=False),
    #: SHA-256 of the request's canonical body: the same key with another body is refused
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("pos_txn_id", sa.String(64)),
    sa.Column("basket_cents", sa.BigInteger, nullable=False),
    sa.Column("discount_cents", sa.BigInteger, nullable=False),
    #: the local day the discount was booked to (the daily budget), in the offer's zone
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("ts", TS, nullable=False, index=True),
    sa.Column("reverses_id", sa.ForeignKey("redemptions.id"), unique=True),
    sa.UniqueConstraint("store_id", "idempotency_key", name="uq_redemptions_store_id_idempotency_key"),
)

sales = sa.Table(
    "sales", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("txn_id", sa.String(64), nullable=False),
    #: "sale" or "refund"
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("ts", TS, nullable=False, index=True),
    #: positive for both kinds; a refund subtracts
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("refund_of_id", sa.ForeignKey("sales.id"), index=True),
    sa.Column("member_id", sa.ForeignKey("members.id"), index=True),
    #: how the member was matched: "qr", "coupon", "phone" (None: not linkable)
    sa.Column("match", sa.String(8)),
    sa.Column("coupon_code", sa.String(16)),
    sa.Column("staff", sa.String(80)),
    #: SHA-256 of the canonical row: a replay with other content is refused
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Column("import_id", sa.ForeignKey("pos_imports.id")),
    sa.UniqueConstraint("store_id", "txn_id", name="uq_sales_store_id_txn_id"),
)

pos_imports = sa.Table(
    "pos_imports", meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rows_new", sa.Integer, nullable=False),
    sa.Column("rows_duplicate", sa.Integer, nullable=False),
    sa.Column("rows_rejected", sa.Integer, nullable=False),
)
