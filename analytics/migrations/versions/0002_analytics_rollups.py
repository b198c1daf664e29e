"""analytics: visits, per-device days, rollups per store and period, mall days and transitions

Revision ID: analytics_0002
Revises: analytics_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0002"
down_revision = "analytics_0001"
branch_labels = None
depends_on = None

COUNTS = ("visitors", "passersby", "visits", "new_visitors", "repeat_visitors", "staff_excluded", "wifi_logins",
          "new_members", "dwell_lt5m", "dwell_5_20m", "dwell_20_60m", "dwell_1_6h", "dwell_gt6h",
          "loyal_first_time", "loyal_daily", "loyal_weekly", "loyal_monthly", "loyal_occasional")


def upgrade() -> None:
    op.create_index("ix_sightings_store_ts", "sightings", ["store", "ts"])
    op.create_table(
        "visits",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(32), primary_key=True),
        sa.Column("start", sa.Float, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("dwell_s", sa.Float, nullable=False),
        sa.Column("staff", sa.Boolean, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
    )
    op.create_index("ix_visits_store_day", "visits", ["store", "day"])
    op.create_table(
        "device_days",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("device", sa.String(32), primary_key=True),
        sa.Column("visited", sa.Boolean, nullable=False),
        sa.Column("staff", sa.Boolean, nullable=False),
        sa.Column("auto_staff", sa.Boolean, nullable=False),
        sa.Column("loyalty", sa.SmallInteger, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("hours", sa.Integer, nullable=False),
    )
    op.create_table(
        "rollups",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("period", sa.String(4), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("mall", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        *[sa.Column(c, sa.Integer, nullable=False) for c in COUNTS],
        sa.Column("capture_rate", sa.Float, nullable=False),
        sa.Column("median_dwell_s", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_rollups_store_day", "rollups", ["store", "day"])
    op.create_index("ix_rollups_mall_day", "rollups", ["mall", "day"])
    op.create_table(
        "mall_days",
        sa.Column("mall", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.Column("passersby", sa.Integer, nullable=False),
        sa.Column("staff_excluded", sa.Integer, nullable=False),
        sa.Column("capture_rate", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "mall_transitions",
        sa.Column("mall", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("src", sa.String(64), primary_key=True),
        sa.Column("dst", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for t in ("mall_transitions", "mall_days", "rollups", "device_days", "visits"):
        op.drop_table(t)
    op.drop_index("ix_sightings_store_ts", "sightings")
