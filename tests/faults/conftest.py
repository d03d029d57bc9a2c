"""Fault fixtures: private PostgreSQL, mosquitto and nats-server instances (defined in test_dependencies)."""

from tests.faults.test_dependencies import private_mosquitto, private_nats, private_pg  # noqa: F401
