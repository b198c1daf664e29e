"""portal: members, devices, logins, consents, SMS codes, sessions, landing URLs, splash content, admin users

Revision ID: portal_0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0001"
down_revision = None
branch_labels = ("portal",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table('landing_urls',
    sa.Column('device_id', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_landing_urls'))
    )
    op.create_table('rate_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_events'))
    )
    op.create_index(op.f('ix_rate_events_key'), 'rate_events', ['key'], unique=False)
    op.create_index(op.f('ix_rate_events_ts'), 'rate_events', ['ts'], unique=False)
    op.create_table('sms_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_codes'))
    )
    op.create_index(op.f('ix_sms_codes_created_at'), 'sms_codes', ['created_at'], unique=False)
    op.create_index(op.f('ix_sms_codes_device_id'), 'sms_codes', ['device_id'], unique=False)
    op.create_index(op.f('ix_sms_codes_phone_hash'), 'sms_codes', ['phone_hash'], unique=False)
    op.create_table('admin_users',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('mall_id', sa.String(length=64), nullable=True),
    sa.Column('store_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['mall_id'], ['malls.id'], name=op.f('fk_admin_users_mall_id_malls')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_admin_users_store_id_stores')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_admin_users'))
    )
    op.create_table('members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=True),
    sa.Column('wechat_openid', sa.String(length=64), nullable=True),
    sa.Column('wechat_unionid', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_store_id', sa.String(length=64), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['first_store_id'], ['stores.id'], name=op.f('fk_members_first_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('phone_e164', name=op.f('uq_members_phone_e164')),
    sa.UniqueConstraint('wechat_openid', name=op.f('uq_members_wechat_openid'))
    )
    op.create_index(op.f('ix_members_first_store_id'), 'members', ['first_store_id'], unique=False)
    op.create_index(op.f('ix_members_wechat_unionid'), 'members', ['wechat_unionid'], unique=False)
    op.create_table('splash_content',
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('offer', sa.String(length=500), nullable=False),
    sa.Column('color', sa.String(length=7), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_splash_content_store_id_stores')),
    sa.PrimaryKeyConstraint('store_id', name=op.f('pk_splash_content'))
    )
    op.create_table('consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_consents_member_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_consents_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    op.create_index(op.f('ix_consents_member_id'), 'consents', ['member_id'], unique=False)
    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=32), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reauth_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_devices_member_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_devices_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('device_id', 'store_id', name='uq_devices_device_id_store_id')
    )
    op.create_index(op.f('ix_devices_device_id'), 'devices', ['device_id'], unique=False)
    op.create_index(op.f('ix_devices_member_id'), 'devices', ['member_id'], unique=False)
    op.create_index(op.f('ix_devices_store_id'), 'devices', ['store_id'], unique=False)
    op.create_table('logins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=32), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_logins_member_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_logins_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logins'))
    )
    op.create_index(op.f('ix_logins_member_id'), 'logins', ['member_id'], unique=False)
    op.create_index(op.f('ix_logins_store_id'), 'logins', ['store_id'], unique=False)
    op.create_index(op.f('ix_logins_ts'), 'logins', ['ts'], unique=False)
    op.create_table('portal_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.String(length=32), nullable=False),
    sa.Column('store_id', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_activity', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bytes_up', sa.BigInteger(), nullable=False),
    sa.Column('bytes_down', sa.BigInteger(), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_portal_sessions_member_id_members')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_portal_sessions_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_sessions'))
    )
    op.create_index(op.f('ix_portal_sessions_device_id'), 'portal_sessions', ['device_id'], unique=False)
    op.create_index(op.f('ix_portal_sessions_ended_at'), 'portal_sessions', ['ended_at'], unique=False)
    op.create_index(op.f('ix_portal_sessions_member_id'), 'portal_sessions', ['member_id'], unique=False)
    op.create_index(op.f('ix_portal_sessions_store_id'), 'portal_sessions', ['store_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_portal_sessions_store_id'), table_name='portal_sessions')
    op.drop_index(op.f('ix_portal_sessions_member_id'), table_name='portal_sessions')
    op.drop_index(op.f('ix_portal_sessions_ended_at'), table_name='portal_sessions')
    op.drop_index(op.f('ix_portal_sessions_device_id'), table_name='portal_sessions')
    op.drop_table('portal_sessions')
    op.drop_index(op.f('ix_logins_ts'), table_name='logins')
    op.drop_index(op.f('ix_logins_store_id'), table_name='logins')
    op.drop_index(op.f('ix_logins_member_id'), table_name='logins')
    op.drop_table('logins')
    op.drop_index(op.f('ix_devices_store_id'), table_name='devices')
    op.drop_index(op.f('ix_devices_member_id'), table_name='devices')
    op.drop_index(op.f('ix_devices_device_id'), table_name='devices')
    op.drop_table('devices')
    op.drop_index(op.f('ix_consents_member_id'), table_name='consents')
    op.drop_table('consents')
    op.drop_table('splash_content')
    op.drop_index(op.f('ix_members_wechat_unionid'), table_name='members')
    op.drop_index(op.f('ix_members_first_store_id'), table_name='members')
    op.drop_table('members')
    op.drop_table('admin_users')
    op.drop_index(op.f('ix_sms_codes_phone_hash'), table_name='sms_codes')
    op.drop_index(op.f('ix_sms_codes_device_id'), table_name='sms_codes')
    op.drop_index(op.f('ix_sms_codes_created_at'), table_name='sms_codes')
    op.drop_table('sms_codes')
    op.drop_index(op.f('ix_rate_events_ts'), table_name='rate_events')
    op.drop_index(op.f('ix_rate_events_key'), table_name='rate_events')
    op.drop_table('rate_events')
    op.drop_table('landing_urls')
