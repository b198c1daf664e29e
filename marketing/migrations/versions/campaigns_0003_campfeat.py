"""campaigns: the coupon a send carries (``campaign_sends.coupon_id``): a campaign with an offer issues its
member's coupon when the send is leased, once per send (marketing.execution)

Revision ID: campaigns_0003_campfeat
Revises: campaigns_0002_execution
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "campaigns_0003_campfeat"
down_revision = "campaigns_0002_execution"
branch_labels = None
depends_on = "marketing_0001"


def upgrade() -> None:
    with op.batch_alter_table("campaign_sends") as b:
        b.add_column(sa.Column("coupon_id", sa.Integer, sa.ForeignKey(
            "coupons.id", name="fk_campaign_sends_coupon_id_coupons"), nullable=True))
        b.create_index("ix_campaign_sends_coupon_id", ["coupon_id"])


def downgrade() -> None:
    with op.batch_alter_table("campaign_sends") as b:
        b.drop_index("ix_campaign_sends_coupon_id")
        b.drop_column("coupon_id")
