"""Alembic environment: always run on a connection handed in by ``citydata.store.migrate``."""

from __future__ import annotations

from alembic import context

import citydata.sensorthings.rollups_schema  # noqa: F401 - registers the observation rollup tables
import citydata.sensorthings.schema  # noqa: F401 - registers the SensorThings tables
import citydata.incidents.schema  # noqa: F401 - registers the IOC tables (alerts, incidents, CAP)
import citydata.tracking.schema  # noqa: F401 - registers the tracking tables
from citydata.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `citydata db upgrade`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
