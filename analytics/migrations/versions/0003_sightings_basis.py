"""analytics: sightings.basis — how a sighting was made (a probe request heard, or a station connected to the AP)

Revision ID: analytics_0003
Revises: analytics_0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0003"
down_revision = "analytics_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every existing row was a probe request heard by the sensor
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("basis", sa.String(16), nullable=False, server_default="probe"))


def downgrade() -> None:
    with op.batch_alter_table("sightings") as batch:
        batch.drop_column("basis")
