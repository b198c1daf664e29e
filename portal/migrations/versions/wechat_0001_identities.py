"""wechat: identities, consumed extend nonces, temporary releases, official-account follows

Revision ID: wechat_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wechat_0001"
down_revision = None
branch_labels = ("wechat",)
depends_on = "portal_0001"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "wechat_identities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("unionid", sa.String(64)),
        sa.Column("member_id", sa.Integer,
                  sa.ForeignKey("members.id", name="fk_wechat_identities_member_id_members")),
        sa.Column("nickname", sa.String(64), nullable=False),
        sa.Column("headimgurl", sa.String(512), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("app_id", "openid", name="uq_wechat_identities_app_id_openid"),
    )
    op.create_index("ix_wechat_identities_unionid", "wechat_identities", ["unionid"])
    op.create_index("ix_wechat_identities_member_id", "wechat_identities", ["member_id"])
    op.create_table(
        "wechat_extend_used",
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_wechat_extend_used_expires_at", "wechat_extend_used", ["expires_at"])
    op.create_table(
        "wechat_releases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device_key", sa.String(32), nullable=False),
        sa.Column("ts", TS, nullable=False),
    )
    op.create_index("ix_wechat_releases_device_key", "wechat_releases", ["device_key"])
    op.create_index("ix_wechat_releases_ts", "wechat_releases", ["ts"])
    op.create_table(
        "wechat_follows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_id", sa.String(64), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", name="fk_wechat_follows_member_id_members")),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("create_time", sa.BigInteger, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.UniqueConstraint("app_id", "openid", "create_time", "event", name="uq_wechat_follows_push"),
    )
    op.create_index("ix_wechat_follows_openid", "wechat_follows", ["openid"])
    op.create_index("ix_wechat_follows_member_id", "wechat_follows", ["member_id"])


def downgrade() -> None:
    op.drop_table("wechat_follows")
    op.drop_table("wechat_releases")
    op.drop_table("wechat_extend_used")
    op.drop_table("wechat_identities")
