"""portal: SMS codes looked up per number and requesting device: index sms_codes (phone_hash, device_id)

A code is bound to the device that asked for it; verification reads the latest code of *this* device for the number,
so another device's request neither replaces nor uses it up. The composite index serves that lookup and, by its
prefix, the per-number counts the single ``phone_hash`` index served.

Revision ID: portal_0003
Revises: portal_0002
"""
from __future__ import annotations

from alembic import op

revision = "portal_0003"
down_revision = "portal_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sms_codes_phone_hash_device_id", "sms_codes", ["phone_hash", "device_id"], unique=False)
    op.drop_index("ix_sms_codes_phone_hash", table_name="sms_codes")


def downgrade() -> None:
    op.create_index("ix_sms_codes_phone_hash", "sms_codes", ["phone_hash"], unique=False)
    op.drop_index("ix_sms_codes_phone_hash_device_id", table_name="sms_codes")
