"""The CCTV analytics tables (Alembic branch ``vision``).

Biometric data (the enrolled and negative face embeddings) and hit snapshots are stored only as AES-256-GCM
ciphertexts (``citydata.vision.crypto``). No table has a column for the embedding of a face that did not match:
those never leave the worker's memory. Plates not on a hotlist are kept only as a keyed HMAC
(``vision_plate_sightings.plate_hash``), never as text.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text

from citydata.store.schema import metadata
from citydata.store.types import JSONText, UTCDateTime

vision_cameras = Table(
    "vision_cameras", metadata,
    Column("id", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("heading_deg", Float, nullable=True),             # view direction, degrees clockwise from north
    Column("zone_id", String(80), nullable=True),
    Column("stream_url", Text, nullable=True),               # rtsp://, http(s)://, file path, or null (push only)
    Column("analytics", JSONText, nullable=False),           # ["faces", "plates", "traffic"]
    Column("masks", JSONText, nullable=False),               # [[[x, y], ...], ...] pixel polygons blacked out
    Column("lines", JSONText, nullable=False),               # virtual stop lines / direction zones
    Column("enabled", Boolean, nullable=False),
    Column("status", String(12), nullable=False),            # unknown, online, offline
    Column("status_since", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

vision_watchlists = Table(
    "vision_watchlists", metadata,
    Column("id", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("threshold", Float, nullable=False),              # cosine distance at or below which a face matches
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

vision_subjects = Table(
    "vision_subjects", metadata,
    Column("watchlist_id", String(80), primary_key=True),
    Column("subject_id", String(80), primary_key=True),      # the police case reference, not a name
    Column("reason", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("enrolled_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

vision_embeddings = Table(
    "vision_embeddings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watchlist_id", String(80), nullable=False),
    Column("subject_id", String(80), nullable=False),
    Column("kind", String(10), nullable=False),              # positive (enrolled photo), negative (wrong hit)
    Column("vector_ct", Text, nullable=False),               # kid:base64(nonce || AES-GCM(float32[128]))
    Column("source", String(120), nullable=False),           # enrol:<n> or hit:<id>
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_vision_embeddings_subject", "watchlist_id", "subject_id"),
)

vision_face_hits = Table(
    "vision_face_hits", metadata,
    Column("id", String(40), primary_key=True),
    Column("camera_id", String(80), nullable=False),
    Column("t", UTCDateTime, nullable=False),
    Column("watchlist_id", String(80), nullable=False),
    Column("subject_id", String(80), nullable=False),
    Column("score", Float, nullable=False),
    Column("bbox", JSONText, nullable=False),
    Column("snapshot", String(200), nullable=True),          # file name under <data_dir>/vision/snapshots
    Column("status", String(12), nullable=False),            # new, confirmed, wrong
    Column("reviewed_by", String(100), nullable=True),
    Column("purge_after", UTCDateTime, nullable=False),
    Index("ix_vision_face_hits_t", "t"),
)

vision_hotlist = Table(
    "vision_hotlist", metadata,
    Column("plate", String(40), primary_key=True),           # normalised registration
    Column("province", String(80), nullable=True),
    Column("list", String(40), nullable=False),              # stolen, wanted, ...
    Column("reason", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("added_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

vision_plate_hits = Table(
    "vision_plate_hits", metadata,
    Column("id", String(40), primary_key=True),
    Column("camera_id", String(80), nullable=False),
    Column("t", UTCDateTime, nullable=False),
    Column("plate", String(40), nullable=False),             # the hotlist entry matched
    Column("read_text", String(40), nullable=False),         # the consensus text read
    Column("province", String(80), nullable=True),
    Column("list", String(40), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("frames", Integer, nullable=False),
    Index("ix_vision_plate_hits_t", "t"),
)

vision_plate_sightings = Table(
    "vision_plate_sightings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera_id", String(80), nullable=False),
    Column("t", UTCDateTime, nullable=False),
    Column("plate_hash", String(64), nullable=False),        # HMAC-SHA256 under a key derived from the secret
    Index("ix_vision_plate_sightings_t", "t"),
)

VISION_TABLES = (vision_cameras, vision_watchlists, vision_subjects, vision_embeddings, vision_face_hits,
                 vision_hotlist, vision_plate_hits, vision_plate_sightings)
