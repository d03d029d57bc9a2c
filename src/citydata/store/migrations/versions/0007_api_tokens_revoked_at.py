"""api_tokens: index on revoked_at, read by every node's token cache (the revocation feed)

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-22 00:10:00
"""
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = ("auth_revocations",)
depends_on = None


def upgrade() -> None:
    op.create_index("ix_api_tokens_revoked_at", "api_tokens", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_revoked_at", table_name="api_tokens")
