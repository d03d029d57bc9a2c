"""reports: tourist problem reports (text and photo encrypted)

Revision ID: reports_0001
Revises: 0002
Create Date: 2026-11-21 17:30:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'reports_0001'
down_revision = '0002'
branch_labels = ('reports',)
depends_on = None

_T = citydata.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('reports',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('client_ref', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('text_ct', sa.Text(), nullable=True),
    sa.Column('photo_ct', sa.Text(), nullable=True),
    sa.Column('photo_bytes', sa.Integer(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('location_source', sa.String(length=16), nullable=True),
    sa.Column('zone_id', sa.String(length=20), nullable=True),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('purged_at', _T, nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_reports'))
    )
    op.create_index('ux_reports_client_ref', 'reports', ['client_ref'], unique=True)
    op.create_index('ix_reports_created_at', 'reports', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_reports_created_at', table_name='reports')
    op.drop_index('ux_reports_client_ref', table_name='reports')
    op.drop_table('reports')
