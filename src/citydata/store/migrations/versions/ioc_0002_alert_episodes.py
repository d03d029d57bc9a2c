"""ioc: alerts.episode and alerts.revision, unique (dedup_key, episode): an alert episode is stored once

Revision ID: ioc_0002
Revises: ioc_0001
Create Date: 2026-11-21 21:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'ioc_0002'
down_revision = 'ioc_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('episode', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=True))
        batch_op.create_index('ux_alerts_dedup_episode', ['dedup_key', 'episode'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ux_alerts_dedup_episode')
        batch_op.drop_column('revision')
        batch_op.drop_column('episode')
