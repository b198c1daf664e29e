"""staff: member card codes used at the counter, staff cards, attribution bindings and settings, redemption flags

Revision ID: staff_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "staff_0001"
down_revision = None
branch_labels = ("staff",)
depends_on = ("portal_0004",)

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "card_uses",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_card_uses_member_id_members"),
                  nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_card_uses_expires_at", "card_uses", ["expires_at"])
    op.create_table(
        "staff_cards",
        sa.Column("staff", sa.String(64), sa.ForeignKey("admin_users.name", name="fk_staff_cards_staff_admin_users",
                                                        ondelete="CASCADE"), primary_key=True),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("phone_hash", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("code", name="uq_staff_cards_code"),
    )
    op.create_table(
        "staff_settings",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("protection_days", sa.Integer, nullable=False),
        sa.Column("burst_count", sa.Integer, nullable=False),
        sa.Column("burst_minutes", sa.Integer, nullable=False),
    )
    op.create_table(
        "staff_bindings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_staff_bindings_member_id_members"),
                  nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("bound_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("protected_until", TS, nullable=False),
    )
    op.create_index("ix_staff_bindings_member_store", "staff_bindings", ["member_id", "store_id", "bound_at"])
    op.create_index("ix_staff_bindings_staff", "staff_bindings", ["staff"])
    op.create_table(
        "staff_flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("member_id", sa.Integer),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_staff_flags_store_at", "staff_flags", ["store_id", "at"])
    op.create_table(
        "staff_redemptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("member_id", sa.Integer),
        sa.Column("attributed_to", sa.String(64)),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("discount_cents", sa.BigInteger, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("reference", name="uq_staff_redemptions_reference"),
    )
    op.create_index("ix_staff_redemptions_staff_at", "staff_redemptions", ["staff", "at"])


def downgrade() -> None:
    for table in ("staff_redemptions", "staff_flags", "staff_bindings", "staff_settings", "staff_cards",
                  "card_uses"):
        op.drop_table(table)
