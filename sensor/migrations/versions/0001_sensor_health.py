"""sensor: health of each sensor (for the dashboards), and the portal's member / opt-out device registry

Revision ID: sensor_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sensor_0001"
down_revision = None
branch_labels = ("sensor",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "sensor_health",
        sa.Column("sensor", sa.String(64), primary_key=True),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("fps", sa.Float, nullable=False),
        sa.Column("frames", sa.BigInteger, nullable=False),
        sa.Column("probes", sa.BigInteger, nullable=False),
        sa.Column("drops", sa.BigInteger, nullable=False),
        sa.Column("malformed", sa.BigInteger, nullable=False),
        sa.Column("bad_fcs", sa.BigInteger, nullable=False),
        sa.Column("spool_batches", sa.Integer, nullable=False),
        sa.Column("spool_bytes", sa.BigInteger, nullable=False),
        sa.Column("spool_dropped", sa.BigInteger, nullable=False),
        sa.Column("delivered", sa.BigInteger, nullable=False),
        sa.Column("last_frame_ts", sa.Float, nullable=True),
        sa.Column("channel", sa.Integer, nullable=True),
        sa.Column("freq", sa.Integer, nullable=True),
        sa.Column("devices", sa.Integer, nullable=False),
        sa.Column("macs", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_sensor_health_store", "sensor_health", ["store"])
    # device ids registered through the portal: consented members (stable ids) and opt-outs (dropped)
    op.create_table(
        "sensor_device_registry",
        sa.Column("device_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sensor_device_registry")
    op.drop_table("sensor_health")
