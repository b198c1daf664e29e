"""portal: accounts and the console: admin_users.must_change_password; the splash's English title and offer,
its logo and its terms page

Revision ID: portal_0005
Revises: portal_0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0005"
down_revision = "portal_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_users") as batch:
        # existing users chose their passwords (or the configuration did): no forced change for them
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("splash_content") as batch:
        batch.add_column(sa.Column("title_en", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("offer_en", sa.String(length=500), nullable=False, server_default=""))
        batch.add_column(sa.Column("terms_zh", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("terms_en", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("logo", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("logo_type", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("splash_content") as batch:
        for name in ("logo_type", "logo", "terms_en", "terms_zh", "offer_en", "title_en"):
            batch.drop_column(name)
    with op.batch_alter_table("admin_users") as batch:
        batch.drop_column("must_change_password")
