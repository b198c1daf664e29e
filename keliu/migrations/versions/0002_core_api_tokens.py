"""core: API bearer tokens (stored as SHA-256 of the token)

Revision ID: core_0002
Revises: core_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None

#: an aware timestamp (keliu.db.UTCDateTime's column type)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("mall_id", sa.String(64), sa.ForeignKey("malls.id", name="fk_api_tokens_mall_id_malls")),
        sa.Column("store_id", sa.String(64), sa.ForeignKey("stores.id", name="fk_api_tokens_store_id_stores")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
