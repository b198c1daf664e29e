"""marketing: a partial index of the issued coupons by their end, for the sweep ``marketing.expire_due``

Revision ID: marketing_0002
Revises: marketing_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "marketing_0002"
down_revision = "marketing_0001"
branch_labels = None
depends_on = None

ISSUED = sa.text("state = 'issued'")


def upgrade() -> None:
    # only the issued coupons: the sweep reads the due ones in order of their end, never the expired, redeemed or
    # voided history (which grows without bound)
    op.create_index("ix_coupons_issued_expires_at", "coupons", ["expires_at"], postgresql_where=ISSUED,
                    sqlite_where=ISSUED)


def downgrade() -> None:
    op.drop_index("ix_coupons_issued_expires_at", table_name="coupons")
