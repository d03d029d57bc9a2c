"""The rules' tables (own Alembic branch ``rules``, revision ``rules_0001``).

* ``rules``: the current document of every rule, with its version;
* ``rule_versions``: every version ever saved (``op`` created, updated, deleted), for audit and rollback;
* ``rule_engine``: the engine's checkpoint header: the last bus ``seq`` it covers, the reorder buffer and
  counters (one row per engine name);
* ``rule_instances``: the state of each rule instance (windows, hysteresis, firing state), JSON text;
* ``rule_outbox``: alert events decided and committed with the checkpoint but not yet published.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from citydata.store.schema import metadata
from citydata.store.types import JSONText, UTCDateTime

rules = Table(
    "rules", metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("doc", JSONText, nullable=False),
    Column("origin", String(100), nullable=True),          # e.g. pack:phuket, api, cli
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(100), nullable=True),
)

rule_versions = Table(
    "rule_versions", metadata,
    Column("rule_id", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("op", String(20), nullable=False),
    Column("doc", JSONText, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("by", String(100), nullable=True),
)

rule_engine = Table(
    "rule_engine", metadata,
    Column("name", String(60), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

rule_instances = Table(
    "rule_instances", metadata,
    Column("engine", String(60), primary_key=True),
    Column("rule_id", String(100), primary_key=True),
    Column("instance", String(300), primary_key=True),
    Column("rule_version", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

rule_outbox = Table(
    "rule_outbox", metadata,
    Column("id", String(40), primary_key=True),
    Column("engine", String(60), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_rule_outbox_engine", "engine", "seq"),
)
