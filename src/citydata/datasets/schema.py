"""Imported government datasets (Alembic branch ``datasets``).

``datasets`` names each dataset and points at its current version; ``dataset_versions`` records every import
(source file, checksum, typed columns, geography join, row and rejection counts); ``dataset_rows`` holds the
typed rows of each version as JSON, with the reference-geography place each row was joined to. A version is
written in one transaction with its rows, so it exists whole or not at all.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from citydata.store.schema import metadata
from citydata.store.types import JSONText, UTCDateTime

datasets = Table(
    "datasets", metadata,
    Column("name", String(100), primary_key=True),
    Column("current_version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

dataset_versions = Table(
    "dataset_versions", metadata,
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", String(500), nullable=False),          # file name as given
    Column("format", String(20), nullable=False),           # csv, geojson, xlsx
    Column("sha256", String(64), nullable=False),
    Column("columns", JSONText, nullable=False),            # [{"name", "type", "declared"}]
    Column("geo", JSONText, nullable=True),                 # {"by", "column(s)", "level"}
    Column("row_count", Integer, nullable=False),
    Column("rejected_count", Integer, nullable=False),
    Column("rejections", JSONText, nullable=False),         # [{"line", "reason"}] (first 1000)
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    PrimaryKeyConstraint("name", "version", name="pk_dataset_versions"),
)

dataset_rows = Table(
    "dataset_rows", metadata,
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("row", Integer, nullable=False),                 # source line (CSV, Excel) or feature number
    Column("place_id", String(40), nullable=True),          # subdistrict:830202, district:8302, province:83
    Column("data", JSONText, nullable=False),               # typed values (dates as ISO strings)
    Column("geometry", JSONText, nullable=True),            # GeoJSON geometry (GeoJSON sources)
    PrimaryKeyConstraint("name", "version", "row", name="pk_dataset_rows"),
    Index("ix_dataset_rows_place", "name", "version", "place_id"),
)

DATASET_TABLES = (datasets, dataset_versions, dataset_rows)
