"""campaign_members without foreign keys: a trigger enrolls a segment of a million members in one INSERT … SELECT,
and PostgreSQL checks a foreign key by one query per inserted row (two keys: two thirds of the statement's time).
Integrity is kept by the code that writes and erases these rows (marketing.store.audience: the campaign's row locked
and the enrollment lock held, shared, while enrolling; marketing.store.erasure: the enrollment lock held, exclusive,
while a member's rows are deleted).

Revision ID: campaign_members_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "campaign_members_0001"
down_revision = None
branch_labels = ("campaign_members",)
depends_on = ("campaigns_0001",)

KEYS = (("fk_campaign_members_campaign_id_campaigns", "campaigns", "campaign_id"),
        ("fk_campaign_members_member_id_members", "members", "member_id"))


def upgrade() -> None:
    with op.batch_alter_table("campaign_members") as b:
        for name, _, _ in KEYS:
            b.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    # rows whose campaign or member is gone would fail the keys: they mean nothing, and go first
    op.execute(sa.text("DELETE FROM campaign_members WHERE campaign_id NOT IN (SELECT id FROM campaigns) "
                       "OR member_id NOT IN (SELECT id FROM members)"))
    with op.batch_alter_table("campaign_members") as b:
        for name, table, column in KEYS:
            b.create_foreign_key(name, table, [column], ["id"], ondelete="CASCADE")
