"""The WiFi tables (Alembic branch ``wifi``).

No table holds a raw MAC. ``device`` columns hold the keyed, period-rotated pseudonym (``pseudonym.py``).

* ``wifi_hotspots``: the registry.
* ``wifi_events``: every accepted session event, pseudonymised (the raw log; purged after
  ``wifi_raw_retention_days``).
* ``wifi_presence``: one row per (hour, hotspot, device) the device was connected in, with its dwell seconds and
  the sessions it began there that hour: the base the rollups are recomputed from (purged with the raw log).
* ``wifi_footfall_hourly`` / ``wifi_footfall_daily``: per hotspot and UTC hour / Asia/Bangkok day (the contract
  the analytics and the dashboard read).
* ``wifi_footfall_area_hourly`` / ``wifi_footfall_area_daily``: the same per ``level`` (``zone``, ``subdistrict``,
  ``city``) and ``area``, with unique devices counted across the area's hotspots (not summed).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Float, Index, Integer, PrimaryKeyConstraint, String, Table

from citydata.store.schema import metadata
from citydata.store.types import UTCDateTime

wifi_hotspots = Table(
    "wifi_hotspots", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("zone", String(64), nullable=False),
    Column("subdistrict_code", String(12), nullable=True),    # tam_code, null outside the sub-districts
    Column("operator", String(120), nullable=False),
    Column("ap_mac", String(17), nullable=True),              # the AP's BSSID (Called-Station-Id), infrastructure
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_wifi_hotspots_zone", "zone"),
    Index("ix_wifi_hotspots_ap_mac", "ap_mac"),
)

wifi_events = Table(
    "wifi_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("hotspot_id", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("subdistrict_code", String(12), nullable=True),
    Column("kind", String(8), nullable=False),                 # start, interim, stop
    Column("device", String(32), nullable=False),              # pseudonym in the period of ``at``
    Column("randomised", Boolean, nullable=False),
    Column("session_time_s", Integer, nullable=True),
    Column("in_octets", Integer, nullable=True),
    Column("out_octets", Integer, nullable=True),
    Column("fmt", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_wifi_events_at", "at"),
)

wifi_presence = Table(
    "wifi_presence", metadata,
    Column("hour", UTCDateTime, nullable=False),
    Column("hotspot_id", String(64), nullable=False),
    Column("device", String(32), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("subdistrict_code", String(12), nullable=False),   # "" outside the sub-districts
    Column("randomised", Boolean, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("dwell_s", Float, nullable=False),
    PrimaryKeyConstraint("hour", "hotspot_id", "device", name="pk_wifi_presence"),
    Index("ix_wifi_presence_device_hour", "device", "hour"),
)


def _measures() -> list[Column[object]]:
    return [Column("devices", Integer, nullable=False), Column("randomised_devices", Integer, nullable=False),
            Column("new_devices", Integer, nullable=False), Column("returning_devices", Integer, nullable=False),
            Column("sessions", Integer, nullable=False), Column("dwell_s", Float, nullable=False)]


wifi_footfall_hourly = Table(
    "wifi_footfall_hourly", metadata,
    Column("hotspot_id", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("subdistrict_code", String(12), nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    *_measures(),
    PrimaryKeyConstraint("hour", "hotspot_id", name="pk_wifi_footfall_hourly"),
    Index("ix_wifi_footfall_hourly_hotspot", "hotspot_id", "hour"),
)

wifi_footfall_daily = Table(
    "wifi_footfall_daily", metadata,
    Column("hotspot_id", String(64), nullable=False),
    Column("zone", String(64), nullable=False),
    Column("subdistrict_code", String(12), nullable=False),
    Column("day", Date, nullable=False),                       # Asia/Bangkok date
    *_measures(),
    PrimaryKeyConstraint("day", "hotspot_id", name="pk_wifi_footfall_daily"),
    Index("ix_wifi_footfall_daily_hotspot", "hotspot_id", "day"),
)

wifi_footfall_area_hourly = Table(
    "wifi_footfall_area_hourly", metadata,
    Column("level", String(12), nullable=False),               # zone, subdistrict, city
    Column("area", String(64), nullable=False),                # zone name, tam_code ("" = outside), "all"
    Column("hour", UTCDateTime, nullable=False),
    Column("hotspots", Integer, nullable=False),               # hotspots with at least one device
    *_measures(),
    PrimaryKeyConstraint("level", "area", "hour", name="pk_wifi_footfall_area_hourly"),
    Index("ix_wifi_footfall_area_hourly_level_hour", "level", "hour"),    # "every zone, these hours"
)

wifi_footfall_area_daily = Table(
    "wifi_footfall_area_daily", metadata,
    Column("level", String(12), nullable=False),
    Column("area", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("hotspots", Integer, nullable=False),
    *_measures(),
    PrimaryKeyConstraint("level", "area", "day", name="pk_wifi_footfall_area_daily"),
)

WIFI_TABLES = (wifi_hotspots, wifi_events, wifi_presence, wifi_footfall_hourly, wifi_footfall_daily,
               wifi_footfall_area_hourly, wifi_footfall_area_daily)
