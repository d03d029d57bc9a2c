"""Alembic environment: always run on a connection handed in by ``citydata.store.migrate``."""

from __future__ import annotations

from alembic import context

import citydata.sensorthings.rollups_schema
import citydata.sensorthings.schema
import citydata.rules.schema
import citydata.tracking.schema
import citydata.wifi.schema
import citydata.vision.schema
import citydata.datasets.schema
import citydata.opendata.schema
import citydata.reports.schema
import citydata.incidents.schema  # noqa: F401 - registers the IOC tables (alerts, incidents, CAP)
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
