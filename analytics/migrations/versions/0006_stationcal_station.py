"""sensor's sightings: an association's station id (the keyed id of its address, as the AP's station list keys it)

An association or reassociation sighting is stored under the phone's linked probe device when the sensor heard that
address probing; ``station`` keeps, next to it, the id the connected-station sightings of the same phone carry (same
key, same day rule, never a MAC), so analytics can pair the two and calibrate the probe-based estimates. A partial
index (store, ts) over the rows that carry one lets the report read the pairs without the day's probes.

Revision ID: analytics_0006_stationcal
Revises: analytics_0005_connbasis
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0006_stationcal"
down_revision = "analytics_0005_connbasis"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows stored before carry no station id: their addresses were never kept, so it cannot be recovered
    op.add_column("sightings", sa.Column("station", sa.String(32), nullable=True))
    where = sa.text("station IS NOT NULL")
    op.create_index("ix_sightings_station", "sightings", ["store", "ts"], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_sightings_station", table_name="sightings")
    # SQLite drops a column by copying the table: batch mode
    with op.batch_alter_table("sightings") as batch:
        batch.drop_column("station")
