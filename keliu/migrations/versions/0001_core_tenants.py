"""core: malls and stores

Revision ID: core_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "malls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("mall_id", sa.String(64), sa.ForeignKey("malls.id", name="fk_stores_mall_id_malls"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
    )
    op.create_index("ix_stores_mall_id", "stores", ["mall_id"])


def downgrade() -> None:
    op.drop_index("ix_stores_mall_id", "stores")
    op.drop_table("stores")
    op.drop_table("malls")
