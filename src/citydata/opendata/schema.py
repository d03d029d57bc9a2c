"""Open-data API keys and their usage counts (Alembic branch ``opendata``).

A key is shown once at creation; only its keyed hash (HMAC-SHA256 with the platform secret) is stored."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from citydata.store.schema import metadata
from citydata.store.types import UTCDateTime

opendata_keys = Table(
    "opendata_keys", metadata,
    Column("id", String(20), primary_key=True),
    Column("name", String(200), nullable=False),            # the startup or application
    Column("organization", String(200), nullable=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("rate_per_min", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

opendata_usage = Table(
    "opendata_usage", metadata,
    Column("key_id", String(20), nullable=False),
    Column("day", String(10), nullable=False),              # YYYY-MM-DD (UTC)
    Column("requests", Integer, nullable=False),
    Column("limited", Integer, nullable=False),             # requests answered 429
    PrimaryKeyConstraint("key_id", "day", name="pk_opendata_usage"),
    Index("ix_opendata_usage_day", "day"),
)
