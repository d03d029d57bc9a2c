"""observations: idempotent on (datastream, phenomenonTime, content hash) instead of (datastream, phenomenonTime)

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-21 15:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0002"
branch_labels = ("sta_dedup",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedup_key", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.drop_constraint("uq_observations_stream_time", type_="unique")
        batch_op.create_unique_constraint("uq_observations_content", ["datastream_id", "phenomenon_time", "dedup_key"])


def downgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_observations_content", type_="unique")
        batch_op.create_unique_constraint("uq_observations_stream_time", ["datastream_id", "phenomenon_time"])
        batch_op.drop_column("dedup_key")
