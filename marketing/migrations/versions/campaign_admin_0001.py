"""campaign_admin: what the console keeps of a campaign beyond the campaigns row (its spec) and who approved it

Revision ID: campaign_admin_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "campaign_admin_0001"
down_revision = None
branch_labels = ("campaign_admin",)
depends_on = ("campaigns_0001",)

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaign_specs",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE",
                                                           name="fk_campaign_specs_campaign_id_campaigns"),
                  primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("approved_at", TS),
    )


def downgrade() -> None:
    op.drop_table("campaign_specs")
