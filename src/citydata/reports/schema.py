"""The tourist problem reports table (Alembic branch ``reports``).

A report's free text and photo may identify people, so both are stored only as AES-256-GCM ciphertexts under
the personal-data keys (``kid:base64``) and are purged after ``reports_retention_days``; category, place and
status stay for statistics.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from citydata.store.schema import metadata
from citydata.store.types import UTCDateTime

reports = Table(
    "reports", metadata,
    Column("code", String(16), primary_key=True),           # the follow-up code given to the tourist
    Column("client_ref", String(64), nullable=True),        # the app's idempotency key (offline queue replays)
    Column("category", String(32), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("text_ct", Text, nullable=True),                 # encrypted; NULL once purged
    Column("photo_ct", Text, nullable=True),                # encrypted JPEG (EXIF stripped except GPS)
    Column("photo_bytes", Integer, nullable=False, default=0),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("accuracy_m", Float, nullable=True),
    Column("location_source", String(16), nullable=True),    # browser | photo
    Column("zone_id", String(20), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("purged_at", UTCDateTime, nullable=True),
    Index("ux_reports_client_ref", "client_ref", unique=True),
    Index("ix_reports_created_at", "created_at"),
)
