"""campaigns: what a campaign sends and to whom (params, message), who created, changed and approved it (the
console's editor and the executor share these columns), the send's lease and attempts, the Wi-Fi success page's
queued messages and the SMS provider's inbound replies

Revision ID: campaigns_0002_execution
Revises: campaigns_0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "campaigns_0002_execution"
down_revision = "campaigns_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as b:
        b.add_column(sa.Column("params", sa.Text, nullable=False, server_default="{}"))
        b.add_column(sa.Column("message", sa.Text, nullable=False, server_default="{}"))
        b.add_column(sa.Column("webhook_secret", sa.String(64)))
        b.add_column(sa.Column("created_by", sa.String(64)))
        b.add_column(sa.Column("updated_by", sa.String(64)))
        b.add_column(sa.Column("updated_at", TS))
        b.add_column(sa.Column("approved_by", sa.String(64)))
        b.add_column(sa.Column("approved_at", TS))
    with op.batch_alter_table("campaign_sends") as b:
        b.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        b.add_column(sa.Column("lease_until", TS))
        b.add_column(sa.Column("provider_ref", sa.String(64)))
        b.add_column(sa.Column("error", sa.String(200)))
    op.create_index("ix_campaign_sends_status_lease", "campaign_sends", ["status", "lease_until"])
    op.create_table(
        "splash_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("send_id", sa.Integer, sa.ForeignKey("campaign_sends.id", ondelete="CASCADE",
                                                       name="fk_splash_messages_send_id_campaign_sends"),
                  nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                         name="fk_splash_messages_member_id_members"),
                  nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("store_id", sa.String(64)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("shown_at", TS),
        sa.UniqueConstraint("send_id", name="uq_splash_messages_send_id"),
    )
    op.create_index("ix_splash_messages_member_id", "splash_messages", ["member_id", "shown_at"])
    op.create_table(
        "sms_replies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(64), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE",
                                                         name="fk_sms_replies_member_id_members")),
        sa.Column("refusal", sa.Boolean, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("provider", "provider_ref", name="uq_sms_replies_provider_ref"),
    )
    op.create_index("ix_sms_replies_member_id", "sms_replies", ["member_id"])


def downgrade() -> None:
    op.drop_table("sms_replies")
    op.drop_table("splash_messages")
    op.drop_index("ix_campaign_sends_status_lease", "campaign_sends")
    with op.batch_alter_table("campaign_sends") as b:
        for c in ("error", "provider_ref", "lease_until", "attempts"):
            b.drop_column(c)
    with op.batch_alter_table("campaigns") as b:
        for c in ("approved_at", "approved_by", "updated_at", "updated_by", "created_by", "webhook_secret", "message",
                  "params"):
            b.drop_column(c)
