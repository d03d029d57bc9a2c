"""vision: cameras, watchlists, subjects, encrypted embeddings, face hits, hotlist, plate hits and sightings

Revision ID: vision_0001
Revises: 0002
Create Date: 2026-11-21 17:30:00
"""
from alembic import op
import sqlalchemy as sa
import citydata.store.types


revision = 'vision_0001'
down_revision = '0002'
branch_labels = ('vision',)
depends_on = None

_T = citydata.store.types.UTCDateTime(timezone=True)
_J = citydata.store.types.JSONText()


def upgrade() -> None:
    op.create_table('vision_cameras',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('heading_deg', sa.Float(), nullable=True),
    sa.Column('zone_id', sa.String(length=80), nullable=True),
    sa.Column('stream_url', sa.Text(), nullable=True),
    sa.Column('analytics', _J, nullable=False),
    sa.Column('masks', _J, nullable=False),
    sa.Column('lines', _J, nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('status_since', _T, nullable=True),
    sa.Column('created_at', _T, nullable=False),
    sa.Column('updated_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_cameras'))
    )
    op.create_table('vision_watchlists',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_watchlists'))
    )
    op.create_table('vision_subjects',
    sa.Column('watchlist_id', sa.String(length=80), nullable=False),
    sa.Column('subject_id', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', _T, nullable=False),
    sa.Column('enrolled_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('watchlist_id', 'subject_id', name=op.f('pk_vision_subjects'))
    )
    op.create_table('vision_embeddings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('watchlist_id', sa.String(length=80), nullable=False),
    sa.Column('subject_id', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('vector_ct', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=120), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_embeddings'))
    )
    op.create_index('ix_vision_embeddings_subject', 'vision_embeddings', ['watchlist_id', 'subject_id'])
    op.create_table('vision_face_hits',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('camera_id', sa.String(length=80), nullable=False),
    sa.Column('t', _T, nullable=False),
    sa.Column('watchlist_id', sa.String(length=80), nullable=False),
    sa.Column('subject_id', sa.String(length=80), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('bbox', _J, nullable=False),
    sa.Column('snapshot', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reviewed_by', sa.String(length=100), nullable=True),
    sa.Column('purge_after', _T, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_face_hits'))
    )
    op.create_index('ix_vision_face_hits_t', 'vision_face_hits', ['t'])
    op.create_table('vision_hotlist',
    sa.Column('plate', sa.String(length=40), nullable=False),
    sa.Column('province', sa.String(length=80), nullable=True),
    sa.Column('list', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', _T, nullable=True),
    sa.Column('added_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', _T, nullable=False),
    sa.PrimaryKeyConstraint('plate', name=op.f('pk_vision_hotlist'))
    )
    op.create_table('vision_plate_hits',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('camera_id', sa.String(length=80), nullable=False),
    sa.Column('t', _T, nullable=False),
    sa.Column('plate', sa.String(length=40), nullable=False),
    sa.Column('read_text', sa.String(length=40), nullable=False),
    sa.Column('province', sa.String(length=80), nullable=True),
    sa.Column('list', sa.String(length=40), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_plate_hits'))
    )
    op.create_index('ix_vision_plate_hits_t', 'vision_plate_hits', ['t'])
    op.create_table('vision_plate_sightings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('camera_id', sa.String(length=80), nullable=False),
    sa.Column('t', _T, nullable=False),
    sa.Column('plate_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vision_plate_sightings'))
    )
    op.create_index('ix_vision_plate_sightings_t', 'vision_plate_sightings', ['t'])


def downgrade() -> None:
    for name in ('vision_plate_sightings', 'vision_plate_hits', 'vision_hotlist', 'vision_face_hits',
                 'vision_embeddings', 'vision_subjects', 'vision_watchlists', 'vision_cameras'):
        op.drop_table(name)
