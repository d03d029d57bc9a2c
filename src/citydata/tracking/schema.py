"""The tracking tables (Alembic branch ``tracking``).

Only ``tracking_identity`` holds personal data, and only as AES-256-GCM ciphertexts (``kid:base64``) plus a
keyed HMAC blind index of the passport number. Every other table carries the pseudonymous ``traveller_id``
(random, never derived from the passport).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from citydata.store.schema import metadata
from citydata.store.types import JSONText, UTCDateTime

tracking_identity = Table(
    "tracking_identity", metadata,
    Column("traveller_id", String(40), primary_key=True),
    Column("name_ct", Text, nullable=False),
    Column("passport_ct", Text, nullable=False),
    Column("nationality_ct", Text, nullable=False),
    Column("birth_date_ct", Text, nullable=False),
    Column("phone_ct", Text, nullable=True),
    Column("passport_bidx", String(64), nullable=False),     # HMAC-SHA256 hex of the normalised passport no.
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_tracking_identity_passport_bidx", "passport_bidx"),
)

tracking_travellers = Table(
    "tracking_travellers", metadata,
    Column("traveller_id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),             # active, departed
    Column("checkpoint", String(20), nullable=False),
    Column("arrived_at", UTCDateTime, nullable=False),
    Column("departed_at", UTCDateTime, nullable=True),
    Column("departure_checkpoint", String(20), nullable=True),
    Column("hotel_id", String(80), nullable=True),
    Column("checked_in_at", UTCDateTime, nullable=True),
    Column("checked_out_at", UTCDateTime, nullable=True),
    Column("screening", JSONText, nullable=False),            # health, test_result, vaccinated, goods
    Column("screening_failed", Boolean, nullable=False),
    Column("consent", JSONText, nullable=False),
    Column("enrol_hash", String(64), nullable=True),          # HMAC of the one-time enrolment code
    Column("enrol_expires_at", UTCDateTime, nullable=True),
    Column("enrolled_at", UTCDateTime, nullable=True),
    Column("device_token_id", String(20), nullable=True),
    # last seen (flushed from memory in batches)
    Column("last_t", UTCDateTime, nullable=True),
    Column("last_lat", Float, nullable=True),
    Column("last_lon", Float, nullable=True),
    Column("last_accuracy_m", Float, nullable=True),
    Column("last_report_at", UTCDateTime, nullable=True),
    Column("overdue_since", UTCDateTime, nullable=True),
    Column("pings_purged_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The bus key partition of the traveller (``partition_of(traveller_id, bus_partitions)``), so a node taking
    # a partition over reads its own travellers, not every active one. NULL: written before it was kept.
    Column("bus_partitions", Integer, nullable=True),
    Column("bus_partition", Integer, nullable=True),
    Index("ix_tracking_travellers_status", "status"),
    Index("ix_tracking_travellers_partition", "bus_partitions", "bus_partition", "status"),
    Index("ix_tracking_travellers_hotel", "hotel_id"),
    Index("ix_tracking_travellers_enrol", "enrol_hash"),
    Index("ix_tracking_travellers_token", "device_token_id"),
)

tracking_pings = Table(
    "tracking_pings", metadata,
    Column("traveller_id", String(40), nullable=False),
    Column("t", UTCDateTime, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("accuracy_m", Float, nullable=True),
    Column("battery", Float, nullable=True),
    Column("source", String(20), nullable=True),
    Column("subdistrict", String(12), nullable=True),         # tam_code, or null outside the sub-districts
    Column("flags", Integer, nullable=False),                 # 1 = impossible speed, 2 = too late to replay
    Column("received_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("traveller_id", "t", name="pk_tracking_pings"),   # duplicates are idempotent
    Index("ix_tracking_pings_t", "t"),
)

tracking_fence_state = Table(
    "tracking_fence_state", metadata,
    Column("traveller_id", String(40), nullable=False),
    Column("fence_id", String(80), nullable=False),
    Column("state", String(10), nullable=False),              # inside, outside, unknown
    Column("since", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("traveller_id", "fence_id", name="pk_tracking_fence_state"),
)

tracking_zones = Table(
    "tracking_zones", metadata,
    Column("id", String(80), primary_key=True),               # zone:<slug>
    Column("name", String(200), nullable=False),
    Column("geometry", JSONText, nullable=False),
    Column("buffer_m", Float, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

tracking_hourly = Table(
    "tracking_hourly", metadata,
    Column("hour", UTCDateTime, nullable=False),
    Column("subdistrict", String(12), nullable=False),        # tam_code, or "outside"
    Column("travellers", Integer, nullable=False),            # distinct travellers; only counts >= k are kept
    PrimaryKeyConstraint("hour", "subdistrict", name="pk_tracking_hourly"),
)

TRACKING_TABLES = (tracking_identity, tracking_travellers, tracking_pings, tracking_fence_state, tracking_zones,
                   tracking_hourly)
