"""marketing: member tags (``member_tags``: one row per member and tag), the ``tag`` fact of campaign segments

Revision ID: marketing_0003_campfeat
Revises: marketing_0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "marketing_0003_campfeat"
down_revision = "marketing_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_tags",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                         name="fk_member_tags_member_id_members"), primary_key=True),
        sa.Column("tag", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_member_tags_tag", "member_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_member_tags_tag", table_name="member_tags")
    op.drop_table("member_tags")
