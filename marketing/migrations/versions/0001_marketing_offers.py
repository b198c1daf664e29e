"""marketing: offers, coupons, the redemption ledger, sales and POS imports

Revision ID: marketing_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "marketing_0001"
down_revision = None
branch_labels = ("marketing",)
# malls and stores (core), members (portal)
depends_on = ("core_0001", "portal_0001")

#: an aware timestamp (keliu.db.UTCDateTime's column type)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("mall_id", sa.String(64), sa.ForeignKey("malls.id", name="fk_offers_mall_id_malls"), nullable=False),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_offers_store_id_stores"),
                  nullable=False),
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
        sa.CheckConstraint("issued_count >= 0 AND spent_cents >= 0", name="counters"),
    )
    op.create_index("ix_offers_mall_id", "offers", ["mall_id"])
    op.create_index("ix_offers_store_id", "offers", ["store_id"])
    op.create_table(
        "offer_stores",
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("offers.id", name="fk_offer_stores_offer_id_offers",
                                                        ondelete="CASCADE"), primary_key=True),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_offer_stores_store_id_stores"),
                  primary_key=True),
    )
    op.create_index("ix_offer_stores_store_id", "offer_stores", ["store_id"])
    op.create_table(
        "offer_days",
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("offers.id", name="fk_offer_days_offer_id_offers",
                                                        ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("spent_cents", sa.BigInteger, nullable=False),
        sa.CheckConstraint("spent_cents >= 0", name="spent"),
    )
    op.create_table(
        "member_offers",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_member_offers_member_id_members"),
                  primary_key=True),
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("offers.id", name="fk_member_offers_offer_id_offers",
                                                        ondelete="CASCADE"), primary_key=True),
        sa.Column("issued", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
        sa.CheckConstraint("issued >= 0 AND used >= 0", name="counters"),
    )
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("offers.id", name="fk_coupons_offer_id_offers"),
                  nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_coupons_member_id_members")),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_coupons_store_id_stores"),
                  nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("issued_by", sa.String(64)),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("state_at", TS, nullable=False),
        sa.Column("redemption_id", sa.Integer),
        sa.UniqueConstraint("code", name="uq_coupons_code"),
    )
    op.create_index("ix_coupons_offer_id", "coupons", ["offer_id"])
    op.create_index("ix_coupons_member_id", "coupons", ["member_id"])
    op.create_index("ix_coupons_expires_at", "coupons", ["expires_at"])
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("coupon_id", sa.Integer, sa.ForeignKey("coupons.id", name="fk_redemptions_coupon_id_coupons"),
                  nullable=False),
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("offers.id", name="fk_redemptions_offer_id_offers"),
                  nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_redemptions_member_id_members")),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_redemptions_store_id_stores"),
                  nullable=False),
        sa.Column("staff", sa.String(80), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("pos_txn_id", sa.String(64)),
        sa.Column("basket_cents", sa.BigInteger, nullable=False),
        sa.Column("discount_cents", sa.BigInteger, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("reverses_id", sa.Integer, sa.ForeignKey("redemptions.id",
                                                           name="fk_redemptions_reverses_id_redemptions")),
        sa.UniqueConstraint("store_id", "idempotency_key", name="uq_redemptions_store_id_idempotency_key"),
        sa.UniqueConstraint("reverses_id", name="uq_redemptions_reverses_id"),
    )
    op.create_index("ix_redemptions_coupon_id", "redemptions", ["coupon_id"])
    op.create_index("ix_redemptions_offer_id", "redemptions", ["offer_id"])
    op.create_index("ix_redemptions_member_id", "redemptions", ["member_id"])
    op.create_index("ix_redemptions_ts", "redemptions", ["ts"])
    op.create_index("ix_redemptions_store_id_pos_txn_id", "redemptions", ["store_id", "pos_txn_id"])
    op.create_table(
        "pos_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_pos_imports_store_id_stores"),
                  nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("rows_new", sa.Integer, nullable=False),
        sa.Column("rows_duplicate", sa.Integer, nullable=False),
        sa.Column("rows_rejected", sa.Integer, nullable=False),
    )
    op.create_table(
        "sales",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_sales_store_id_stores"),
                  nullable=False),
        sa.Column("txn_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("refund_of_id", sa.Integer, sa.ForeignKey("sales.id", name="fk_sales_refund_of_id_sales")),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_sales_member_id_members")),
        sa.Column("match", sa.String(8)),
        sa.Column("coupon_code", sa.String(16)),
        sa.Column("staff", sa.String(80)),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("pos_imports.id", name="fk_sales_import_id_pos_imports")),
        sa.UniqueConstraint("store_id", "txn_id", name="uq_sales_store_id_txn_id"),
        sa.CheckConstraint("amount_cents >= 0", name="amount"),
    )
    op.create_index("ix_sales_ts", "sales", ["ts"])
    op.create_index("ix_sales_refund_of_id", "sales", ["refund_of_id"])
    op.create_index("ix_sales_member_id", "sales", ["member_id"])


def downgrade() -> None:
    for name in ("sales", "pos_imports", "redemptions", "coupons", "member_offers", "offer_days", "offer_stores",
                 "offers"):
        op.drop_table(name)
