"""audit: the staff audit trail, append-only

Revision ID: audit_0001
Revises:

The database itself refuses to change or delete an entry: on PostgreSQL a trigger raises on ``UPDATE``,
``DELETE`` and ``TRUNCATE``; on SQLite a trigger raises on ``UPDATE`` and ``DELETE``. Dropping the triggers takes the
table owner (a deliberate act, outside keliu; ``downgrade`` drops the table with them).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision = None
branch_labels = ("audit",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("mall_id", sa.String(64)),
        sa.Column("store_id", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_staff_audit_ts", "staff_audit", ["ts"])
    op.create_index("ix_staff_audit_mall_id", "staff_audit", ["mall_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION staff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'staff_audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
            END $$""")
        op.execute("CREATE TRIGGER staff_audit_no_change BEFORE UPDATE OR DELETE ON staff_audit "
                   "FOR EACH ROW EXECUTE FUNCTION staff_audit_append_only()")
        op.execute("CREATE TRIGGER staff_audit_no_truncate BEFORE TRUNCATE ON staff_audit "
                   "FOR EACH STATEMENT EXECUTE FUNCTION staff_audit_append_only()")
    else:
        op.execute("CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit "
                   "BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only: UPDATE refused'); END")
        op.execute("CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit "
                   "BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only: DELETE refused'); END")


def downgrade() -> None:
    op.drop_table("staff_audit")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION staff_audit_append_only()")
