"""sensor: health counts frames dropped for a timestamp outside the window, and MACs evicted at the identity cap

Revision ID: sensor_0002
Revises: sensor_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sensor_0002"
down_revision = "sensor_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sensor_health", sa.Column("bad_ts", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("sensor_health", sa.Column("evicted", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode
    with op.batch_alter_table("sensor_health") as batch:
        batch.drop_column("evicted")
        batch.drop_column("bad_ts")
