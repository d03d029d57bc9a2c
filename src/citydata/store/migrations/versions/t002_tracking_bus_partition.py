"""tracking: travellers.bus_partitions and bus_partition, so a partition takeover reads its own travellers

Revision ID: t002_tracking
Revises: t001_tracking
Create Date: 2026-11-22 03:30:00

Rows written before stay NULL: a takeover reads them all and keeps its own (as every takeover did before).
"""
from alembic import op
import sqlalchemy as sa


revision = 't002_tracking'
down_revision = 't001_tracking'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tracking_travellers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bus_partitions', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('bus_partition', sa.Integer(), nullable=True))
        batch_op.create_index('ix_tracking_travellers_partition', ['bus_partitions', 'bus_partition', 'status'])


def downgrade() -> None:
    with op.batch_alter_table('tracking_travellers', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_travellers_partition')
        batch_op.drop_column('bus_partition')
        batch_op.drop_column('bus_partitions')
