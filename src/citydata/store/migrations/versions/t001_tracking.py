"""tracking: traveller identity (encrypted), travellers, pings, fence states, zones, hourly aggregates

Revision ID: t001_tracking
Revises: 0002
Create Date: 2026-11-21 16:00:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 't001_tracking'
down_revision = '0002'
branch_labels = ('tracking',)
depends_on = None

_T = citydata.store.types.UTCDateTime(timezone=True)
_J = citydata.store.types.JSONText()


def upgrade() -> None:
    op.create_table('tracking_identity',
    sa.Column('traveller_id', sa.String(length=40), nullable=False),
    sa.Column('name_ct', sa.Text(), nullable=False),
    sa.Column('passport_ct', sa.Text(), nullable=False),
    sa.Column('nationality_ct', sa.Text(), nullable=False),
    sa.Column('birth_date_ct', sa.Text(), nullable=False),
    sa.Column('phone_ct', sa.Text(), nullable=True),
    sa.Column('passport_bidx', sa.String(length=64), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('updated_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('traveller_id', name=op.f('pk_tracking_identity'))
    )
    op.create_index('ix_tracking_identity_passport_bidx', 'tracking_identity', ['passport_bidx'])
    op.create_table('tracking_travellers',
    sa.Column('traveller_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('checkpoint', sa.String(length=20), nullable=False),
    sa.Column('arrived_at', _T, nullable=False),
    sa.Column('departed_at', _T, nullable=True),
    sa.Column('departure_checkpoint', sa.String(length=20), nullable=True),
    sa.Column('hotel_id', sa.String(length=80), nullable=True),
    sa.Column('checked_in_at', _T, nullable=True),
    sa.Column('checked_out_at', _T, nullable=True),
    sa.Column('screening', _J, nullable=False),
    sa.Column('screening_failed', sa.Boolean(), nullable=False),
    sa.Column('consent', _J, nullable=False),
    sa.Column('enrol_hash', sa.String(length=64), nullable=True),
    sa.Column('enrol_expires_at', _T, nullable=True),
    sa.Column('enrolled_at', _T, nullable=True),
    sa.Column('device_token_id', sa.String(length=20), nullable=True),
    sa.Column('last_t', _T, nullable=True),
    sa.Column('last_lat', sa.Float(), nullable=True),
    sa.Column('last_lon', sa.Float(), nullable=True),
    sa.Column('last_accuracy_m', sa.Float(), nullable=True),
    sa.Column('last_report_at', _T, nullable=True),
    sa.Column('overdue_since', _T, nullable=True),
    sa.Column('pings_purged_at', _T, nullable=True),
    sa.Column('created_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('traveller_id', name=op.f('pk_tracking_travellers'))
    )
    op.create_index('ix_tracking_travellers_status', 'tracking_travellers', ['status'])
    op.create_index('ix_tracking_travellers_hotel', 'tracking_travellers', ['hotel_id'])
    op.create_index('ix_tracking_travellers_enrol', 'tracking_travellers', ['enrol_hash'])
    op.create_index('ix_tracking_travellers_token', 'tracking_travellers', ['device_token_id'])
    op.create_table('tracking_pings',
    sa.Column('traveller_id', sa.String(length=40), nullable=False),
    sa.Column('t', _T, nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('battery', sa.Float(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=True),
    sa.Column('subdistrict', sa.String(length=12), nullable=True),
    sa.Column('flags', sa.Integer(), nullable=False),
    sa.Column('received_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('traveller_id', 't', name='pk_tracking_pings')
    )
    op.create_index('ix_tracking_pings_t', 'tracking_pings', ['t'])
    op.create_table('tracking_fence_state',
    sa.Column('traveller_id', sa.String(length=40), nullable=False),
    sa.Column('fence_id', sa.String(length=80), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('since', _T, nullable=True),
    sa.Column('updated_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('traveller_id', 'fence_id', name='pk_tracking_fence_state')
    )
    op.create_table('tracking_zones',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('geometry', _J, nullable=False),
    sa.Column('buffer_m', sa.Float(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracking_zones'))
    )
    op.create_table('tracking_hourly',
    sa.Column('hour', _T, nullable=False),
    sa.Column('subdistrict', sa.String(length=12), nullable=False),
    sa.Column('travellers', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'subdistrict', name='pk_tracking_hourly')
    )


def downgrade() -> None:
    for name in ('tracking_hourly', 'tracking_zones', 'tracking_fence_state', 'tracking_pings',
                 'tracking_travellers', 'tracking_identity'):
        op.drop_table(name)
