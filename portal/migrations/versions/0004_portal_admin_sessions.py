"""portal: server-side admin sessions (the cookie carries a random id; logout and a new password revoke it)

Revision ID: portal_0004
Revises: portal_0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0004"
down_revision = "portal_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_name'], ['admin_users.name'], name=op.f('fk_admin_sessions_user_name_admin_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_admin_sessions'))
    )
    op.create_index(op.f('ix_admin_sessions_expires_at'), 'admin_sessions', ['expires_at'], unique=False)
    op.create_index(op.f('ix_admin_sessions_user_name'), 'admin_sessions', ['user_name'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_admin_sessions_user_name'), table_name='admin_sessions')
    op.drop_index(op.f('ix_admin_sessions_expires_at'), table_name='admin_sessions')
    op.drop_table('admin_sessions')
