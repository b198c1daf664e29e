"""analytics: each store-day's connected visits, stored when the pipeline rolls the day up

The store, mall and operator reports carry a ``connected`` block made of the AP's stations. Made from the polls at
report time, a busy mall's week is millions of sightings (seconds per report); the pipeline now stores what the
block needs of each store-day (``analytics.metrics.ConnectedRecord``): ``connected_days`` says a day was rolled up
and how many stations were heard, ``connected_visits`` holds its connected visits and the stations left out as
staff (keyed station ids, never a MAC). Days rolled up before this revision have no rows: the reports keep making
them from their polls until the pipeline rolls them up again.

Revision ID: analytics_0007_connroll
Revises: analytics_0006_stationcal
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0007_connroll"
down_revision = "analytics_0006_stationcal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connected_days",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("stations", sa.Integer, nullable=False),
    )
    op.create_table(
        "connected_visits",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("device", sa.String(32), primary_key=True),
        sa.Column("start", sa.Float, primary_key=True),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("staff", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("connected_visits")
    op.drop_table("connected_days")
