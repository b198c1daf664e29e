"""analytics: the store-days and mall-days of late sightings, until they are rolled up

The dispatcher rolls up today and yesterday; a sensor that delivers its spool more than a day late (an outage over
a weekend) stored its older days' sightings but nobody rolled them up. ``late_sightings`` records, in the insert's
transaction, the store and UTC quarter hour of sightings stored late (``sensor.store``: no device); the roll-up of
their day deletes them and records its mall-day in ``late_mall_days``, which the mall's roll-up deletes. The
dispatcher sends both roll-ups for what is recorded (``analytics.late``).

Revision ID: analytics_0008_lateroll
Revises: analytics_0007_connroll
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "analytics_0008_lateroll"
down_revision = "analytics_0007_connroll"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "late_sightings",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("slot", sa.BigInteger, primary_key=True),
        sa.Column("dispatched", sa.Float, nullable=True),
    )
    op.create_table(
        "late_mall_days",
        sa.Column("mall", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("dispatched", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("late_mall_days")
    op.drop_table("late_sightings")
