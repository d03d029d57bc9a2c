"""Hourly and daily aggregates of numeric Observations (migration 0003), kept by ``sensorthings.retention``.

One row per (datastream, period, bucket): ``count``, ``sum``, ``min``, ``max``, the first and last phenomenon
times and the last result, over every numeric Observation of the bucket, whether its raw row is still stored or
was purged. Hour rows also carry the ``purged_*`` aggregate of the raw rows purged from the bucket, so a bucket
can always be recomputed exactly as ``purged ⊕ raw rows still stored``. Day rows are merged from hour rows.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, PrimaryKeyConstraint, String, Table

from citydata.store.schema import metadata
from citydata.store.types import UTCDateTime

_AGG = (("count", Integer, False), ("sum", Float, False), ("min", Float, True), ("max", Float, True),
        ("first_time", UTCDateTime, True), ("last_time", UTCDateTime, True), ("last_result", Float, True))

observation_rollups = Table(
    "observation_rollups", metadata,
    Column("datastream_id", Integer, nullable=False),
    Column("period", String(8), nullable=False),            # 'hour' or 'day'
    Column("bucket_start", UTCDateTime, nullable=False),
    *[Column(name, type_, nullable=nullable) for name, type_, nullable in _AGG],
    *[Column(f"purged_{name}", type_, nullable=True) for name, type_, _ in _AGG],
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("datastream_id", "period", "bucket_start", name="pk_observation_rollups"),
    Index("ix_observation_rollups_period_bucket", "period", "bucket_start"),
)
