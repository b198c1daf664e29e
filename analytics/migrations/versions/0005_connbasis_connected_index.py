"""sensor's sightings: a partial index (store, ts) over the connected stations (basis "connected") only

The store's day and range reports compute their ``connected`` block from the day's connected-station sightings at
report time (analytics.report); without this index that query would read every probe sighting of the day too.

Revision ID: analytics_0005_connbasis
Revises: analytics_0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0005_connbasis"
down_revision = "analytics_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text("basis = 'connected'")
    op.create_index("ix_sightings_connected", "sightings", ["store", "ts"], postgresql_where=where,
                    sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_sightings_connected", table_name="sightings")
