"""The SensorThings data model as data: entity types, their properties and navigation links.

The query compiler, the serializer, the create/update service and the MQTT topics all read these tables, so a
property or a link is described once. Property kinds:

* ``id``: the integer ``@iot.id``;
* ``string`` / ``json`` (an object or array kept as JSON) / ``geo`` (a GeoJSON geometry or feature, with the
  table's bbox columns) / ``time`` (an instant) / ``interval`` (two columns ``<col>_start``/``<col>_end``,
  written as ``start/end`` ISO 8601);
* ``phenomenon`` (Observation.phenomenonTime: an instant or an interval, columns ``phenomenon_time`` and
  ``phenomenon_time_end``); ``result`` (Observation.result: ``result_number`` for numbers, ``result_json``
  for anything else).

Navigation kinds:

* ``fk_here``: this table has ``column`` pointing at the target's id (to-one);
* ``fk_there``: the target table has ``column`` pointing at this id (to-many);
* ``link``: a link table ``link`` with ``this_column`` and ``target_column`` (to-many, or to-one with
  ``many=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Table

from citydata.sensorthings import schema as s
from citydata.store.schema import observations

PropKind = Literal["id", "string", "json", "geo", "time", "interval", "phenomenon", "result"]
NavKind = Literal["fk_here", "fk_there", "link"]


@dataclass(frozen=True)
class Prop:
    name: str                 # the STA name (camelCase)
    column: str               # the column (or column prefix for intervals)
    kind: PropKind
    required: bool = False    # required on create
    writable: bool = True     # clients may set it (False: server-computed, e.g. observedArea)


@dataclass(frozen=True)
class Nav:
    name: str                 # navigation property name, e.g. "Datastreams"
    target: str               # entity name, e.g. "Datastream"
    many: bool
    kind: NavKind
    column: str = ""          # fk_here: column in this table; fk_there: column in the target's table
    link: Table | None = None
    this_column: str = ""
    target_column: str = ""
    required: bool = False    # a create must link it (e.g. Datastream.Thing)


@dataclass(frozen=True)
class Entity:
    name: str                 # "Thing"
    set_name: str             # "Things"
    table: Table
    props: tuple[Prop, ...]
    navs: tuple[Nav, ...] = field(default_factory=tuple)

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    def nav(self, name: str) -> Nav | None:
        return next((n for n in self.navs if n.name == name), None)


_ID = Prop("id", "id", "id", writable=False)
_NAME = Prop("name", "name", "string", required=True)
_DESC = Prop("description", "description", "string", required=True)
_PROPS = Prop("properties", "properties", "json")
_ENC = Prop("encodingType", "encoding_type", "string", required=True)

THING = Entity("Thing", "Things", s.things, (_ID, _NAME, _DESC, _PROPS), (
    Nav("Locations", "Location", True, "link", link=s.thing_locations, this_column="thing_id",
        target_column="location_id"),
    Nav("HistoricalLocations", "HistoricalLocation", True, "fk_there", column="thing_id"),
    Nav("Datastreams", "Datastream", True, "fk_there", column="thing_id"),
    Nav("MultiDatastreams", "MultiDatastream", True, "fk_there", column="thing_id"),
))

LOCATION = Entity("Location", "Locations", s.locations, (
    _ID, _NAME, _DESC, _ENC, Prop("location", "location", "geo", required=True), _PROPS), (
    Nav("Things", "Thing", True, "link", link=s.thing_locations, this_column="location_id",
        target_column="thing_id"),
    Nav("HistoricalLocations", "HistoricalLocation", True, "link", link=s.historical_location_locations,
        this_column="location_id", target_column="historical_location_id"),
))

HISTORICAL_LOCATION = Entity("HistoricalLocation", "HistoricalLocations", s.historical_locations, (
    _ID, Prop("time", "time", "time", required=True)), (
    Nav("Thing", "Thing", False, "fk_here", column="thing_id", required=True),
    Nav("Locations", "Location", True, "link", link=s.historical_location_locations,
        this_column="historical_location_id", target_column="location_id"),
))

SENSOR = Entity("Sensor", "Sensors", s.sensors, (
    _ID, _NAME, _DESC, _ENC, Prop("metadata", "metadata", "string", required=True), _PROPS), (
    Nav("Datastreams", "Datastream", True, "fk_there", column="sensor_id"),
    Nav("MultiDatastreams", "MultiDatastream", True, "fk_there", column="sensor_id"),
))

OBSERVED_PROPERTY = Entity("ObservedProperty", "ObservedProperties", s.observed_properties, (
    _ID, _NAME, Prop("definition", "definition", "string", required=True), _DESC, _PROPS), (
    Nav("Datastreams", "Datastream", True, "fk_there", column="observed_property_id"),
    Nav("MultiDatastreams", "MultiDatastream", True, "link", link=s.multi_datastream_observed_properties,
        this_column="observed_property_id", target_column="multi_datastream_id"),
))

_STREAM_PROPS = (
    Prop("observedArea", "observed_area", "geo", writable=False),
    Prop("phenomenonTime", "phenomenon_time", "interval", writable=False),
    Prop("resultTime", "result_time", "interval", writable=False),
    _PROPS,
)

DATASTREAM = Entity("Datastream", "Datastreams", s.datastreams, (
    _ID, _NAME, _DESC, Prop("unitOfMeasurement", "unit_of_measurement", "json", required=True),
    Prop("observationType", "observation_type", "string", required=True), *_STREAM_PROPS), (
    Nav("Thing", "Thing", False, "fk_here", column="thing_id", required=True),
    Nav("Sensor", "Sensor", False, "fk_here", column="sensor_id", required=True),
    Nav("ObservedProperty", "ObservedProperty", False, "fk_here", column="observed_property_id", required=True),
    Nav("Observations", "Observation", True, "fk_there", column="datastream_id"),
))

MULTI_DATASTREAM = Entity("MultiDatastream", "MultiDatastreams", s.multi_datastreams, (
    _ID, _NAME, _DESC, Prop("unitOfMeasurements", "unit_of_measurements", "json", required=True),
    Prop("observationType", "observation_type", "string", required=True),
    Prop("multiObservationDataTypes", "multi_observation_data_types", "json", required=True), *_STREAM_PROPS), (
    Nav("Thing", "Thing", False, "fk_here", column="thing_id", required=True),
    Nav("Sensor", "Sensor", False, "fk_here", column="sensor_id", required=True),
    Nav("ObservedProperties", "ObservedProperty", True, "link", link=s.multi_datastream_observed_properties,
        this_column="multi_datastream_id", target_column="observed_property_id", required=True),
    Nav("Observations", "Observation", True, "fk_there", column="datastream_id"),
))

OBSERVATION = Entity("Observation", "Observations", observations, (
    _ID,
    Prop("phenomenonTime", "phenomenon_time", "phenomenon"),
    Prop("resultTime", "result_time", "time"),
    Prop("result", "result", "result", required=True),
    Prop("resultQuality", "result_quality", "json"),
    Prop("validTime", "valid_time", "interval"),
    Prop("parameters", "parameters", "json"),
), (
    # Datastreams and MultiDatastreams share one id space: the stream's kind decides which link is set.
    Nav("Datastream", "Datastream", False, "fk_here", column="datastream_id"),
    Nav("MultiDatastream", "MultiDatastream", False, "fk_here", column="datastream_id"),
    Nav("FeatureOfInterest", "FeatureOfInterest", False, "fk_here", column="foi_id"),
))

FEATURE_OF_INTEREST = Entity("FeatureOfInterest", "FeaturesOfInterest", s.features_of_interest, (
    _ID, _NAME, _DESC, _ENC, Prop("feature", "feature", "geo", required=True), _PROPS), (
    Nav("Observations", "Observation", True, "fk_there", column="foi_id"),
))

ENTITIES: dict[str, Entity] = {e.name: e for e in (
    THING, LOCATION, HISTORICAL_LOCATION, SENSOR, OBSERVED_PROPERTY, DATASTREAM, MULTI_DATASTREAM, OBSERVATION,
    FEATURE_OF_INTEREST)}
BY_SET: dict[str, Entity] = {e.set_name: e for e in ENTITIES.values()}

def reverse_nav(nav: Nav) -> Nav:
    """The navigation from the target back to the source (Thing.Datastreams -> Datastream.Thing)."""
    target = ENTITIES[nav.target]
    for back in target.navs:
        if nav.kind == "fk_there" and back.kind == "fk_here" and back.column == nav.column:
            return back
        if nav.kind == "fk_here" and back.kind == "fk_there" and back.column == nav.column:
            return back
        if nav.kind == "link" and back.kind == "link" and back.link is nav.link:
            return back
    raise ValueError(f"no reverse navigation for {nav.name}")


# Observation types (OGC 18-088 Table 13) and the result each one expects.
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
OM_CATEGORY = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CategoryObservation"
OM_COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
OM_TRUTH = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"
OM_OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation"
OM_COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"

CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/batch-request/batch-request",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/multi-datastream",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates",
)
