"""portal: the (MAC . IP) binding of a device's login: devices.bound_ip, devices.lease_tag

Revision ID: portal_0002
Revises: portal_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0002"
down_revision = "portal_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # devices remembered before this revision have no binding: their next visit needs one SMS (fail closed)
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("bound_ip", sa.String(length=45), nullable=True))
        batch.add_column(sa.Column("lease_tag", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("lease_tag")
        batch.drop_column("bound_ip")
