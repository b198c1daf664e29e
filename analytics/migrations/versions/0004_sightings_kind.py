"""sensor's sightings: what was heard (a probe request, or an association or reassociation request)

Revision ID: analytics_0004
Revises: analytics_0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0004"
down_revision = "analytics_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every sighting stored before this revision came from a probe request (the sensor read nothing else)
    op.add_column("sightings", sa.Column("kind", sa.String(8), nullable=False, server_default="probe"))


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode
    with op.batch_alter_table("sightings") as batch:
        batch.drop_column("kind")
