"""wifi: hotspot registry, pseudonymised session events, presence and footfall rollups

Revision ID: wifi_0001
Revises: 0002
Create Date: 2026-11-21 17:40:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'wifi_0001'
down_revision = '0002'
branch_labels = ('wifi',)
depends_on = None

_T = citydata.store.types.UTCDateTime(timezone=True)


def _measures() -> list[sa.Column]:
    return [sa.Column('devices', sa.Integer(), nullable=False),
            sa.Column('randomised_devices', sa.Integer(), nullable=False),
            sa.Column('new_devices', sa.Integer(), nullable=False),
            sa.Column('returning_devices', sa.Integer(), nullable=False),
            sa.Column('sessions', sa.Integer(), nullable=False),
            sa.Column('dwell_s', sa.Float(), nullable=False)]


def upgrade() -> None:
    op.create_table('wifi_hotspots',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('subdistrict_code', sa.String(length=12), nullable=True),
    sa.Column('operator', sa.String(length=120), nullable=False),
    sa.Column('ap_mac', sa.String(length=17), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('updated_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wifi_hotspots'))
    )
    op.create_index('ix_wifi_hotspots_zone', 'wifi_hotspots', ['zone'])
    op.create_index('ix_wifi_hotspots_ap_mac', 'wifi_hotspots', ['ap_mac'])
    op.create_table('wifi_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', _T, nullable=False),
    sa.Column('hotspot_id', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('subdistrict_code', sa.String(length=12), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('device', sa.String(length=32), nullable=False),
    sa.Column('randomised', sa.Boolean(), nullable=False),
    sa.Column('session_time_s', sa.Integer(), nullable=True),
    sa.Column('in_octets', sa.Integer(), nullable=True),
    sa.Column('out_octets', sa.Integer(), nullable=True),
    sa.Column('fmt', sa.String(length=16), nullable=False),
    sa.Column('received_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wifi_events'))
    )
    op.create_index('ix_wifi_events_at', 'wifi_events', ['at'])
    op.create_table('wifi_presence',
    sa.Column('hour', _T, nullable=False),
    sa.Column('hotspot_id', sa.String(length=64), nullable=False),
    sa.Column('device', sa.String(length=32), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('subdistrict_code', sa.String(length=12), nullable=False),
    sa.Column('randomised', sa.Boolean(), nullable=False),
    sa.Column('sessions', sa.Integer(), nullable=False),
    sa.Column('dwell_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'hotspot_id', 'device', name='pk_wifi_presence')
    )
    op.create_index('ix_wifi_presence_device_hour', 'wifi_presence', ['device', 'hour'])
    op.create_table('wifi_footfall_hourly',
    sa.Column('hotspot_id', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('subdistrict_code', sa.String(length=12), nullable=False),
    sa.Column('hour', _T, nullable=False),
    *_measures(),
    sa.PrimaryKeyConstraint('hour', 'hotspot_id', name='pk_wifi_footfall_hourly')
    )
    op.create_index('ix_wifi_footfall_hourly_hotspot', 'wifi_footfall_hourly', ['hotspot_id', 'hour'])
    op.create_table('wifi_footfall_daily',
    sa.Column('hotspot_id', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('subdistrict_code', sa.String(length=12), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *_measures(),
    sa.PrimaryKeyConstraint('day', 'hotspot_id', name='pk_wifi_footfall_daily')
    )
    op.create_index('ix_wifi_footfall_daily_hotspot', 'wifi_footfall_daily', ['hotspot_id', 'day'])
    op.create_table('wifi_footfall_area_hourly',
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.Column('hour', _T, nullable=False),
    sa.Column('hotspots', sa.Integer(), nullable=False),
    *_measures(),
    sa.PrimaryKeyConstraint('level', 'area', 'hour', name='pk_wifi_footfall_area_hourly')
    )
    op.create_index('ix_wifi_footfall_area_hourly_level_hour', 'wifi_footfall_area_hourly', ['level', 'hour'])
    op.create_table('wifi_footfall_area_daily',
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hotspots', sa.Integer(), nullable=False),
    *_measures(),
    sa.PrimaryKeyConstraint('level', 'area', 'day', name='pk_wifi_footfall_area_daily')
    )


def downgrade() -> None:
    for name in ('wifi_footfall_area_daily', 'wifi_footfall_area_hourly', 'wifi_footfall_daily',
                 'wifi_footfall_hourly', 'wifi_presence', 'wifi_events', 'wifi_hotspots'):
        op.drop_table(name)
