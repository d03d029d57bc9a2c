"""The one schema, in SQLAlchemy Core. Alembic migrations in ``migrations/`` create and evolve it.

Conventions: times are ``UTCDateTime``; free-form payloads are ``JSONText``; geometries are GeoJSON text with
a bounding box (``min_lon`` ... ``max_lat``) for index pre-filtering on engines without PostGIS.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from citydata.store.types import JSONText, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
# BIGINT primary keys autoincrement on PostgreSQL; SQLite needs INTEGER for its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "meta", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", JSONText, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- reference geography -------------------------------------------------------------------------------------
places = Table(
    "places", metadata,
    Column("id", String(80), primary_key=True),          # e.g. province:83, district:8301, checkpoint:HKT
    Column("kind", String(40), nullable=False),           # province, district, subdistrict, checkpoint, pier
    Column("code", String(40), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("name_th", String(200), nullable=True),
    Column("parent_id", String(80), nullable=True),
    Column("city", String(80), nullable=False),
    Column("geometry", JSONText, nullable=False),         # GeoJSON geometry
    Column("min_lon", Float, nullable=False),
    Column("min_lat", Float, nullable=False),
    Column("max_lon", Float, nullable=False),
    Column("max_lat", Float, nullable=False),
    Column("properties", JSONText, nullable=True),
    Column("source", String(200), nullable=True),
    Index("ix_places_kind_code", "kind", "code"),
    Index("ix_places_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),
)

# -- devices ------------------------------------------------------------------------------------------------
devices = Table(
    "devices", metadata,
    Column("id", String(100), primary_key=True),
    Column("kind", String(40), nullable=False),           # rain_gauge, water_level, dissolved_oxygen, camera
    Column("name", String(200), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("zone_id", String(80), nullable=True),
    Column("agency", String(80), nullable=True),          # owner agency
    Column("properties", JSONText, nullable=True),
    Column("status", String(20), nullable=False, server_default="unknown"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("last_heartbeat", JSONText, nullable=True),
    Index("ix_devices_kind", "kind"),
)

# -- time series --------------------------------------------------------------------------------------------
observations = Table(
    "observations", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("datastream_id", Integer, nullable=False),
    Column("phenomenon_time", UTCDateTime, nullable=False),
    Column("phenomenon_time_end", UTCDateTime, nullable=True),
    Column("result_time", UTCDateTime, nullable=True),
    Column("result_number", Float, nullable=True),
    Column("result_json", JSONText, nullable=True),       # non-numeric results (string, bool, object, array)
    Column("result_quality", JSONText, nullable=True),
    Column("valid_time_start", UTCDateTime, nullable=True),
    Column("valid_time_end", UTCDateTime, nullable=True),
    Column("parameters", JSONText, nullable=True),
    Column("foi_id", Integer, nullable=True),
    # a hash of everything else the observation says (result, FeatureOfInterest, times, parameters): the same
    # observation delivered twice is stored once, while two different observations at the same time are both kept
    Column("dedup_key", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("datastream_id", "phenomenon_time", "dedup_key", name="uq_observations_content"),
    Index("ix_observations_foi", "foi_id"),
)

latest_observations = Table(
    "latest_observations", metadata,
    Column("datastream_id", Integer, primary_key=True),
    Column("observation_id", BigId, nullable=False),
    Column("phenomenon_time", UTCDateTime, nullable=False),
    Column("result_number", Float, nullable=True),
    Column("result_json", JSONText, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- events (the bus journal for the in-process bus, and the event history) --------------------------------
events = Table(
    "events", metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("kind", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Column("data", JSONText, nullable=False),
    Column("source", String(100), nullable=False),
    Index("ix_events_kind_time", "kind", "time"),
)

bus_offsets = Table(
    "bus_offsets", metadata,
    Column("group_name", String(100), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(40), nullable=False),          # mqtt, http, bus, webhook ...
    Column("channel", String(300), nullable=False),        # topic, route or consumer group
    Column("payload", Text, nullable=True),                # truncated
    Column("reason", Text, nullable=False),
    Column("detail", JSONText, nullable=True),
    Index("ix_dead_letters_at", "at"),
)

# -- security -----------------------------------------------------------------------------------------------
users = Table(
    "users", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("agency", String(80), nullable=True),           # e.g. a hotel id or a police station
    Column("display_name", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=True),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(40), primary_key=True),            # the public part of the token
    Column("name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("agency", String(80), nullable=True),
    Column("device_id", String(100), ForeignKey("devices.id", ondelete="SET NULL"), nullable=True),
    Column("secret_hash", String(128), nullable=False),    # HMAC-SHA256 of the secret part
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_api_tokens_revoked_at", "revoked_at"),     # the token caches' revocation feed
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("role", String(40), nullable=False),
    Column("action", String(100), nullable=False),          # e.g. pii.read, token.create, incident.update
    Column("subject_type", String(60), nullable=True),
    Column("subject_id", String(100), nullable=True),
    Column("purpose", String(300), nullable=True),
    Column("detail", JSONText, nullable=True),
    Column("client", String(100), nullable=True),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_subject", "subject_type", "subject_id"),
)
