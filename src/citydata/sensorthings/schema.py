"""SensorThings tables, on the platform's one ``metadata``.

Datastreams and MultiDatastreams share one id space (allocated from the ``datastreams`` id block), so the
``observations`` table's ``datastream_id`` and ``latest_observations`` serve both: an Observation belongs to the
stream with that id, whichever kind it is. Observation rows carry no foreign keys (bulk ingest speed); the
service enforces the references and the deletion cascades the standard requires.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from citydata.store.schema import BigId, metadata
from citydata.store.types import JSONText, UTCDateTime


def _bbox() -> list[Column[float]]:
    return [Column("min_lon", Float, nullable=True), Column("min_lat", Float, nullable=True),
            Column("max_lon", Float, nullable=True), Column("max_lat", Float, nullable=True)]


things = Table(
    "sta_things", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("properties", JSONText, nullable=True),
)

locations = Table(
    "sta_locations", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("encoding_type", String(100), nullable=False),
    Column("location", JSONText, nullable=False),
    *_bbox(),
    Column("properties", JSONText, nullable=True),
)

thing_locations = Table(
    "sta_thing_locations", metadata,
    Column("thing_id", Integer, ForeignKey("sta_things.id", ondelete="CASCADE"), primary_key=True),
    Column("location_id", Integer, ForeignKey("sta_locations.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_sta_thing_locations_location", "location_id"),
)

historical_locations = Table(
    "sta_historical_locations", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("thing_id", Integer, ForeignKey("sta_things.id", ondelete="CASCADE"), nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Index("ix_sta_historical_locations_thing", "thing_id", "time"),
)

historical_location_locations = Table(
    "sta_historical_location_locations", metadata,
    Column("historical_location_id", Integer, ForeignKey("sta_historical_locations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("location_id", Integer, ForeignKey("sta_locations.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_sta_hll_location", "location_id"),
)

sensors = Table(
    "sta_sensors", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("encoding_type", String(100), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("properties", JSONText, nullable=True),
)

observed_properties = Table(
    "sta_observed_properties", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("definition", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("properties", JSONText, nullable=True),
)

_stream_common = (
    ("phenomenon_time_start", UTCDateTime), ("phenomenon_time_end", UTCDateTime),
    ("result_time_start", UTCDateTime), ("result_time_end", UTCDateTime),
)

datastreams = Table(
    "sta_datastreams", metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("unit_of_measurement", JSONText, nullable=False),
    Column("observation_type", String(300), nullable=False),
    Column("observed_area", JSONText, nullable=True),
    *[Column(n, t, nullable=True) for n, t in _stream_common],
    Column("properties", JSONText, nullable=True),
    Column("thing_id", Integer, ForeignKey("sta_things.id", ondelete="CASCADE"), nullable=False),
    Column("sensor_id", Integer, ForeignKey("sta_sensors.id", ondelete="CASCADE"), nullable=False),
    Column("observed_property_id", Integer, ForeignKey("sta_observed_properties.id", ondelete="CASCADE"),
           nullable=False),
    Index("ix_sta_datastreams_thing", "thing_id"),
    Index("ix_sta_datastreams_sensor", "sensor_id"),
    Index("ix_sta_datastreams_op", "observed_property_id"),
)

multi_datastreams = Table(
    "sta_multi_datastreams", metadata,
    Column("id", BigId, primary_key=True, autoincrement=False),
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("unit_of_measurements", JSONText, nullable=False),
    Column("observation_type", String(300), nullable=False),
    Column("multi_observation_data_types", JSONText, nullable=False),
    Column("observed_area", JSONText, nullable=True),
    *[Column(n, t, nullable=True) for n, t in _stream_common],
    Column("properties", JSONText, nullable=True),
    Column("thing_id", Integer, ForeignKey("sta_things.id", ondelete="CASCADE"), nullable=False),
    Column("sensor_id", Integer, ForeignKey("sta_sensors.id", ondelete="CASCADE"), nullable=False),
    Index("ix_sta_multi_datastreams_thing", "thing_id"),
    Index("ix_sta_multi_datastreams_sensor", "sensor_id"),
)

multi_datastream_observed_properties = Table(
    "sta_multi_datastream_observed_properties", metadata,
    Column("multi_datastream_id", Integer, ForeignKey("sta_multi_datastreams.id", ondelete="CASCADE"),
           primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("observed_property_id", Integer, ForeignKey("sta_observed_properties.id", ondelete="CASCADE"),
           nullable=False),
    Index("ix_sta_mdop_op", "observed_property_id"),
)

features_of_interest = Table(
    "sta_features_of_interest", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("encoding_type", String(100), nullable=False),
    Column("feature", JSONText, nullable=False),
    *_bbox(),
    Column("properties", JSONText, nullable=True),
    # set when the FeatureOfInterest was generated from a Thing's Location (reused for later Observations)
    Column("generated_from_location_id", Integer, nullable=True),
    Index("ix_sta_foi_generated", "generated_from_location_id"),
)
