"""opendata: API keys for startups and their daily usage counts

Revision ID: opendata_0001
Revises: 0002
Create Date: 2026-11-21 17:20:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'opendata_0001'
down_revision = '0002'
branch_labels = ('opendata',)
depends_on = None

_T = citydata.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('opendata_keys',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('organization', sa.String(length=200), nullable=True),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('rate_per_min', sa.Integer(), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('revoked_at', _T, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opendata_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_opendata_keys_key_hash'))
    )
    op.create_table('opendata_usage',
    sa.Column('key_id', sa.String(length=20), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('limited', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key_id', 'day', name='pk_opendata_usage')
    )
    op.create_index('ix_opendata_usage_day', 'opendata_usage', ['day'])


def downgrade() -> None:
    op.drop_index('ix_opendata_usage_day', table_name='opendata_usage')
    op.drop_table('opendata_usage')
    op.drop_table('opendata_keys')
