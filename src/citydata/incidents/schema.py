"""The IOC tables: alerts, agencies, incidents (with their alerts, assignments, notes and attachments), CAP
warnings and messages, and outgoing notification deliveries. Created by the ``ioc`` Alembic branch
(revision ``ioc_0001``, ``down_revision = "0002"``)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from citydata.store.schema import BigId, metadata
from citydata.store.types import JSONText, UTCDateTime

# -- alerts -------------------------------------------------------------------------------------------------
alerts = Table(
    "alerts", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dedup_key", String(300), nullable=False),
    Column("kind", String(100), nullable=False),           # env.flood_risk, tracking.left_zone ...
    Column("severity", String(20), nullable=False),        # CAP severity, lower case
    Column("category", String(20), nullable=False),        # CAP category
    Column("urgency", String(20), nullable=False),
    Column("certainty", String(20), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("message", Text, nullable=False),
    Column("message_th", Text, nullable=True),
    Column("location", JSONText, nullable=True),           # GeoJSON geometry
    Column("zone_id", String(80), nullable=True),
    Column("evidence", JSONText, nullable=False),          # newest last, capped
    Column("rule_id", String(200), nullable=True),
    Column("rule_version", Integer, nullable=True),
    Column("data", JSONText, nullable=True),
    Column("source", String(100), nullable=True),          # who raised it (the event's source)
    Column("last_event_id", String(40), nullable=True),    # the last alert.raised applied (redelivery guard)
    Column("episode", String(120), nullable=True),         # the producer's firing episode: stored once
    Column("revision", Integer, nullable=True),            # the newest revision of the episode applied
    Column("state", String(20), nullable=False),           # open, acknowledged, cleared
    Column("occurrences", Integer, nullable=False, server_default="1"),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("observed_at", UTCDateTime, nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("acked_at", UTCDateTime, nullable=True),
    Column("acked_by", String(100), nullable=True),
    Column("cleared_at", UTCDateTime, nullable=True),
    Column("cleared_by", String(100), nullable=True),
    Column("clear_reason", String(500), nullable=True),
    Index("ix_alerts_dedup_state", "dedup_key", "state"),
    Index("ix_alerts_kind_opened", "kind", "opened_at"),
    Index("ix_alerts_state_opened", "state", "opened_at"),
    Index("ux_alerts_dedup_episode", "dedup_key", "episode", unique=True),   # NULL episodes never collide
)

# -- agencies and their contact endpoints -----------------------------------------------------------------
agencies = Table(
    "agencies", metadata,
    Column("id", String(80), primary_key=True),            # police, tourist_police, hospital ...
    Column("name", String(200), nullable=False),
    Column("name_th", String(200), nullable=True),
    Column("webhook_url", String(1000), nullable=True),
    Column("webhook_secret", String(200), nullable=True),  # HMAC key; never returned by the API
    Column("email", String(300), nullable=True),
    Column("line_to", String(100), nullable=True),         # LINE user, group or room id
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- incidents ----------------------------------------------------------------------------------------------
incidents = Table(
    "incidents", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=True),
    Column("priority", String(4), nullable=False),         # P1 .. P4
    Column("state", String(20), nullable=False),
    Column("origin", String(20), nullable=False),          # alert, phone, manual
    Column("location", JSONText, nullable=True),
    Column("zone_id", String(80), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("state_times", JSONText, nullable=False),       # {state: first time it was entered}
    Column("ack_due_at", UTCDateTime, nullable=True),
    Column("scene_due_at", UTCDateTime, nullable=True),
    Column("breaches", JSONText, nullable=False),          # [{"stage", "due_at", "at"}]
    Column("version", Integer, nullable=False, server_default="1"),
    Index("ix_incidents_state", "state"),
    Index("ix_incidents_created", "created_at"),
)

incident_alerts = Table(
    "incident_alerts", metadata,
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
)

incident_assignments = Table(
    "incident_assignments", metadata,
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("agency_id", String(80), ForeignKey("agencies.id"), primary_key=True),
    Column("assigned_at", UTCDateTime, nullable=False),
    Column("assigned_by", String(100), nullable=False),
    Column("note", String(500), nullable=True),
    Index("ix_incident_assignments_agency", "agency_id"),
)

incident_notes = Table(
    "incident_notes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("author", String(100), nullable=False),
    Column("role", String(40), nullable=False),
    Column("agency", String(80), nullable=True),
    Column("text", Text, nullable=False),
    Index("ix_incident_notes_incident", "incident_id"),
)

incident_attachments = Table(
    "incident_attachments", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", String(500), nullable=False),           # relative to <data_dir>/attachments
    Column("uploaded_at", UTCDateTime, nullable=False),
    Column("uploaded_by", String(100), nullable=False),
    Index("ix_incident_attachments_incident", "incident_id"),
)

# -- CAP public warnings -----------------------------------------------------------------------------------
cap_warnings = Table(
    "cap_warnings", metadata,
    Column("id", String(40), primary_key=True),
    Column("state", String(20), nullable=False),           # draft, active, cancelled, rejected
    Column("origin", String(20), nullable=False),          # operator, rule
    Column("draft_key", String(400), nullable=True, unique=True),  # the cap.draft_requested key
    Column("spec", JSONText, nullable=False),              # the warning's content (WarningSpec)
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("approved_by", String(100), nullable=True),
    Column("current_message", String(200), nullable=True),
    Index("ix_cap_warnings_state", "state"),
)

cap_messages = Table(
    "cap_messages", metadata,
    Column("identifier", String(200), primary_key=True),
    Column("warning_id", String(40), ForeignKey("cap_warnings.id", ondelete="CASCADE"), nullable=False),
    Column("msg_type", String(10), nullable=False),        # Alert, Update, Cancel
    Column("sent", UTCDateTime, nullable=False),
    Column("xml", Text, nullable=False),
    Column("headline", String(500), nullable=True),
    Column("created_by", String(100), nullable=False),
    Index("ix_cap_messages_sent", "sent"),
    Index("ix_cap_messages_warning", "warning_id"),
)

# -- outgoing notifications -------------------------------------------------------------------------------
deliveries = Table(
    "deliveries", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("agency_id", String(80), nullable=False),
    Column("channel", String(20), nullable=False),         # webhook, smtp, line
    Column("event", String(100), nullable=False),          # incident.dispatched, incident.sla_breached ...
    Column("subject_id", String(100), nullable=True),      # the incident id
    Column("payload", JSONText, nullable=False),
    Column("state", String(20), nullable=False),           # pending, sending, delivered, dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCDateTime, nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_deliveries_state_next", "state", "next_at"),
)

IOC_TABLES = (alerts, agencies, incidents, incident_alerts, incident_assignments, incident_notes,
              incident_attachments, cap_warnings, cap_messages, deliveries)
