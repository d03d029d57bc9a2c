"""rules: rules, rule_versions, rule_engine, rule_instances, rule_outbox

Revision ID: rules_0001
Revises: 0002
Create Date: 2026-11-22 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'rules_0001'
down_revision = '0002'
branch_labels = ('rules',)
depends_on = None


def upgrade() -> None:
    op.create_table('rules',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('doc', citydata.store.types.JSONText(), nullable=False),
    sa.Column('origin', sa.String(length=100), nullable=True),
    sa.Column('created_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rules'))
    )
    op.create_table('rule_versions',
    sa.Column('rule_id', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=20), nullable=False),
    sa.Column('doc', citydata.store.types.JSONText(), nullable=True),
    sa.Column('at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('rule_id', 'version', name=op.f('pk_rule_versions'))
    )
    op.create_table('rule_engine',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_rule_engine'))
    )
    op.create_table('rule_instances',
    sa.Column('engine', sa.String(length=60), nullable=False),
    sa.Column('rule_id', sa.String(length=100), nullable=False),
    sa.Column('instance', sa.String(length=300), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('engine', 'rule_id', 'instance', name=op.f('pk_rule_instances'))
    )
    op.create_table('rule_outbox',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('engine', sa.String(length=60), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.Text(), nullable=False),
    sa.Column('created_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_outbox'))
    )
    with op.batch_alter_table('rule_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_rule_outbox_engine', ['engine', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rule_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_rule_outbox_engine')
    op.drop_table('rule_outbox')
    op.drop_table('rule_instances')
    op.drop_table('rule_engine')
    op.drop_table('rule_versions')
    op.drop_table('rules')
