"""wechat: the member cards keliu activated, per official account and member (the campaigns' wechat_card channel)

Revision ID: wechat_0003_channels
Revises: wechat_0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wechat_0003_channels"
down_revision = "wechat_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wechat_card_members",
        sa.Column("app_id", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wechat_card_members")
