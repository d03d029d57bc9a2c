"""ioc: alerts, agencies, incidents, CAP warnings, deliveries

Revision ID: ioc_0001
Revises: 0002
Create Date: 2026-11-21 15:13:59.970209
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'ioc_0001'
down_revision = '0002'
branch_labels = ('ioc',)
depends_on = None


def upgrade() -> None:
    op.create_table('agencies',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_th', sa.String(length=200), nullable=True),
    sa.Column('webhook_url', sa.String(length=1000), nullable=True),
    sa.Column('webhook_secret', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=300), nullable=True),
    sa.Column('line_to', sa.String(length=100), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('created_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agencies'))
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dedup_key', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('urgency', sa.String(length=20), nullable=False),
    sa.Column('certainty', sa.String(length=20), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('message_th', sa.Text(), nullable=True),
    sa.Column('location', citydata.store.types.JSONText(), nullable=True),
    sa.Column('zone_id', sa.String(length=80), nullable=True),
    sa.Column('evidence', citydata.store.types.JSONText(), nullable=False),
    sa.Column('rule_id', sa.String(length=200), nullable=True),
    sa.Column('rule_version', sa.Integer(), nullable=True),
    sa.Column('data', citydata.store.types.JSONText(), nullable=True),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('last_event_id', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('occurrences', sa.Integer(), server_default='1', nullable=False),
    sa.Column('opened_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('observed_at', citydata.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acked_at', citydata.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acked_by', sa.String(length=100), nullable=True),
    sa.Column('cleared_at', citydata.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cleared_by', sa.String(length=100), nullable=True),
    sa.Column('clear_reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_dedup_state', ['dedup_key', 'state'], unique=False)
        batch_op.create_index('ix_alerts_kind_opened', ['kind', 'opened_at'], unique=False)
        batch_op.create_index('ix_alerts_state_opened', ['state', 'opened_at'], unique=False)

    op.create_table('cap_warnings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('draft_key', sa.String(length=400), nullable=True),
    sa.Column('spec', citydata.store.types.JSONText(), nullable=False),
    sa.Column('created_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=100), nullable=True),
    sa.Column('current_message', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cap_warnings')),
    sa.UniqueConstraint('draft_key', name=op.f('uq_cap_warnings_draft_key'))
    )
    with op.batch_alter_table('cap_warnings', schema=None) as batch_op:
        batch_op.create_index('ix_cap_warnings_state', ['state'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('agency_id', sa.String(length=80), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('subject_id', sa.String(length=100), nullable=True),
    sa.Column('payload', citydata.store.types.JSONText(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', citydata.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_state_next', ['state', 'next_at'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('priority', sa.String(length=4), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('location', citydata.store.types.JSONText(), nullable=True),
    sa.Column('zone_id', sa.String(length=80), nullable=True),
    sa.Column('created_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('updated_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state_times', citydata.store.types.JSONText(), nullable=False),
    sa.Column('ack_due_at', citydata.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('scene_due_at', citydata.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breaches', citydata.store.types.JSONText(), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index('ix_incidents_created', ['created_at'], unique=False)
        batch_op.create_index('ix_incidents_state', ['state'], unique=False)

    op.create_table('cap_messages',
    sa.Column('identifier', sa.String(length=200), nullable=False),
    sa.Column('warning_id', sa.String(length=40), nullable=False),
    sa.Column('msg_type', sa.String(length=10), nullable=False),
    sa.Column('sent', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('xml', sa.Text(), nullable=False),
    sa.Column('headline', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['warning_id'], ['cap_warnings.id'], name=op.f('fk_cap_messages_warning_id_cap_warnings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('identifier', name=op.f('pk_cap_messages'))
    )
    with op.batch_alter_table('cap_messages', schema=None) as batch_op:
        batch_op.create_index('ix_cap_messages_sent', ['sent'], unique=False)
        batch_op.create_index('ix_cap_messages_warning', ['warning_id'], unique=False)

    op.create_table('incident_alerts',
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_incident_alerts_alert_id_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_alerts_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', 'alert_id', name=op.f('pk_incident_alerts'))
    )
    op.create_table('incident_assignments',
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agency_id', sa.String(length=80), nullable=False),
    sa.Column('assigned_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('assigned_by', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_incident_assignments_agency_id_agencies')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_assignments_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', 'agency_id', name=op.f('pk_incident_assignments'))
    )
    with op.batch_alter_table('incident_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_incident_assignments_agency', ['agency_id'], unique=False)

    op.create_table('incident_attachments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('uploaded_at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_attachments_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_attachments'))
    )
    with op.batch_alter_table('incident_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_incident_attachments_incident', ['incident_id'], unique=False)

    op.create_table('incident_notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', citydata.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('agency', sa.String(length=80), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_notes_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_notes'))
    )
    with op.batch_alter_table('incident_notes', schema=None) as batch_op:
        batch_op.create_index('ix_incident_notes_incident', ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_notes_incident')

    op.drop_table('incident_notes')
    with op.batch_alter_table('incident_attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_attachments_incident')

    op.drop_table('incident_attachments')
    with op.batch_alter_table('incident_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_assignments_agency')

    op.drop_table('incident_assignments')
    op.drop_table('incident_alerts')
    with op.batch_alter_table('cap_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_cap_messages_warning')
        batch_op.drop_index('ix_cap_messages_sent')

    op.drop_table('cap_messages')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_state')
        batch_op.drop_index('ix_incidents_created')

    op.drop_table('incidents')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_state_next')

    op.drop_table('deliveries')
    with op.batch_alter_table('cap_warnings', schema=None) as batch_op:
        batch_op.drop_index('ix_cap_warnings_state')

    op.drop_table('cap_warnings')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_state_opened')
        batch_op.drop_index('ix_alerts_kind_opened')
        batch_op.drop_index('ix_alerts_dedup_state')

    op.drop_table('alerts')
    op.drop_table('agencies')
