"""campaigns: campaigns, their members' arms, the send ledger and the contact counts

Revision ID: campaigns_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "campaigns_0001"
down_revision = None
branch_labels = ("campaigns",)
depends_on = "portal_0001"


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_campaigns_store_id_stores")),
        sa.Column("mall_id", sa.String(64), sa.ForeignKey("malls.id", name="fk_campaigns_mall_id_malls")),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("control_share", sa.Float, nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("cooldown_s", sa.Integer, nullable=False),
        sa.Column("window_days", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_campaigns_store_id", "campaigns", ["store_id"])
    op.create_index("ix_campaigns_mall_id", "campaigns", ["mall_id"])
    op.create_table(
        "campaign_members",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE",
                                                           name="fk_campaign_members_campaign_id_campaigns"),
                  primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                         name="fk_campaign_members_member_id_members"),
                  primary_key=True),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("eligible_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_campaign_members_member_id", "campaign_members", ["member_id"])
    op.create_table(
        "campaign_sends",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE",
                                                           name="fk_campaign_sends_campaign_id_campaigns"),
                  nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                         name="fk_campaign_sends_member_id_members"),
                  nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(48)),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "step", "member_id", name="uq_campaign_sends_once"),
    )
    op.create_index("ix_campaign_sends_campaign_id", "campaign_sends", ["campaign_id"])
    op.create_index("ix_campaign_sends_member_id", "campaign_sends", ["member_id"])
    op.create_table(
        "contact_counts",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                         name="fk_contact_counts_member_id_members"),
                  primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("contact_counts", "campaign_sends", "campaign_members", "campaigns"):
        op.drop_table(table)
