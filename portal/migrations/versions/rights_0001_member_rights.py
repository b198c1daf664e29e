"""rights: which sensor registry ids are a member's (to erase them), and where an imported consent came from

Revision ID: rights_0001
Revises:
Depends on: portal_0004

A branch of its own (``rights``): the members' tables are the portal's, but this revision only adds to them.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rights_0001"
down_revision = None
branch_labels = ("rights",)
depends_on = ("portal_0004",)

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_registry",
        sa.Column("registry_id", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_member_registry_member_id_members"),
                  primary_key=True),
        sa.Column("since", TS, nullable=False),
    )
    op.create_index("ix_member_registry_member_id", "member_registry", ["member_id"])
    # NULL: decided on the portal itself; otherwise the evidence an import brought (a CRM's name, a paper form)
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("source", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("source")
    op.drop_index("ix_member_registry_member_id", "member_registry")
    op.drop_table("member_registry")
