"""wechat: the member card template of each official account (card/create's card_id)

Revision ID: wechat_0002
Revises: wechat_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wechat_0002"
down_revision = "wechat_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wechat_member_cards",
        sa.Column("app_id", sa.String(32), primary_key=True),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wechat_member_cards")
