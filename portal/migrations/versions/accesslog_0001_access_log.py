"""accesslog: the hash-chained access and NAT log (MPS Order 82) and its chain head

Revision ID: accesslog_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "accesslog_0001"
down_revision = None
branch_labels = ("accesslog",)
depends_on = "portal_0001"

TS = sa.DateTime(timezone=True)
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("account", sa.String(160), nullable=True),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("public_ip", sa.String(45), nullable=True),
        sa.Column("port_lo", sa.Integer(), nullable=True),
        sa.Column("port_hi", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_access_log")),
    )
    op.create_index(op.f("ix_access_log_ts"), "access_log", ["ts"])
    op.create_index(op.f("ix_access_log_session_id"), "access_log", ["session_id"])
    op.create_index("ix_access_log_public_ip_port_lo_ts", "access_log", ["public_ip", "port_lo", "ts"])
    op.create_index("ix_access_log_ip_ts", "access_log", ["ip", "ts"])
    op.create_index("ix_access_log_phone_ts", "access_log", ["phone", "ts"])
    op.create_index("ix_access_log_mac_ts", "access_log", ["mac", "ts"])
    head = op.create_table(
        "accesslog_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accesslog_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "prev_hash": GENESIS, "hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("accesslog_head")
    for name in ("ix_access_log_mac_ts", "ix_access_log_phone_ts", "ix_access_log_ip_ts",
                 "ix_access_log_public_ip_port_lo_ts", op.f("ix_access_log_session_id"), op.f("ix_access_log_ts")):
        op.drop_index(name, table_name="access_log")
    op.drop_table("access_log")
