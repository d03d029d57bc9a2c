"""datasets: imported government datasets, their versions and typed rows

Revision ID: datasets_0001
Revises: 0002
Create Date: 2026-11-21 17:20:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'datasets_0001'
down_revision = '0002'
branch_labels = ('datasets',)
depends_on = None

_T = citydata.store.types.UTCDateTime(timezone=True)
_J = citydata.store.types.JSONText()


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('updated_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_datasets'))
    )
    op.create_table('dataset_versions',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('columns', _J, nullable=False),
    sa.Column('geo', _J, nullable=True),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('rejected_count', sa.Integer(), nullable=False),
    sa.Column('rejections', _J, nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('name', 'version', name='pk_dataset_versions')
    )
    op.create_table('dataset_rows',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('place_id', sa.String(length=40), nullable=True),
    sa.Column('data', _J, nullable=False),
    sa.Column('geometry', _J, nullable=True),
    sa.PrimaryKeyConstraint('name', 'version', 'row', name='pk_dataset_rows')
    )
    op.create_index('ix_dataset_rows_place', 'dataset_rows', ['name', 'version', 'place_id'])


def downgrade() -> None:
    op.drop_index('ix_dataset_rows_place', table_name='dataset_rows')
    for name in ('dataset_rows', 'dataset_versions', 'datasets'):
        op.drop_table(name)
