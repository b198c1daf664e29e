"""analytics: the AP's station list heard, by store, 5-minute slot and sensor

A poll of hostapd's station list that finds nobody writes no sighting, and neither does a poll that fails, so the
reports could not tell an hour nobody was connected in from an hour the list was not read in. ``station_polls``
records the successful polls (``sensor.store``: first and last poll of the slot, the most stations associated; no
device), written with the sightings of their batch; the reports read it for ``hourly_connected`` and the
``connected`` block's ``coverage`` and ``last_poll``. Purged with the raw sightings.

Revision ID: analytics_0009_aphealth
Revises: analytics_0008_lateroll
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0009_aphealth"
down_revision = "analytics_0008_lateroll"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_polls",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("slot", sa.BigInteger, primary_key=True),
        sa.Column("sensor", sa.String(64), primary_key=True),
        sa.Column("first", sa.Float, nullable=False),
        sa.Column("last", sa.Float, nullable=False),
        sa.Column("stations", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("station_polls")
