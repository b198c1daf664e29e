"""sensor: health counts requests whose radiotap signal no receiver reads (above +10 dBm), kept with no signal

Revision ID: sensor_0003
Revises: sensor_0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sensor_0003"
down_revision = "sensor_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sensor_health", sa.Column("bad_signal", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode
    with op.batch_alter_table("sensor_health") as batch:
        batch.drop_column("bad_signal")
