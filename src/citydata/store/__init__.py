"""The store: one schema (SQLAlchemy Core + Alembic) on SQLite or PostgreSQL."""

from citydata.store.engine import Store, create_store

__all__ = ["Store", "create_store"]
