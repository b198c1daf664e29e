"""analytics: raw sightings

Revision ID: analytics_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0001"
down_revision = None
branch_labels = ("analytics",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "sightings",
        sa.Column("sid", sa.String(40), primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("sensor", sa.String(64), nullable=False),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("rssi", sa.SmallInteger, nullable=True),
        sa.Column("freq", sa.Integer, nullable=True),
        sa.Column("seq", sa.Integer, nullable=True),
        sa.Column("randomized", sa.Boolean, nullable=False),
    )
    op.create_index("ix_sightings_ts", "sightings", ["ts"])
    op.create_index("ix_sightings_store", "sightings", ["store"])


def downgrade() -> None:
    op.drop_table("sightings")
