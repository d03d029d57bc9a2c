"""``citydata db upgrade|current``."""

from __future__ import annotations

import typer

from citydata.cli.common import ConfigOpt, run, settings_from

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(config: ConfigOpt = None) -> None:
    """Create the database (and schema) if needed and apply every pending migration."""
    from citydata.clock import SystemClock
    from citydata.store import create_store

    settings = settings_from(config)

    async def go() -> str:
        store = create_store(settings, SystemClock())
        await store.start()
        try:
            from citydata.store.migrate import current_revision

            assert store.engine is not None
            return await current_revision(store.engine) or ""
        finally:
            await store.stop()

    print(f"database at revision {run(go())}")


@app.command("current")
def current(config: ConfigOpt = None) -> None:
    """Print the database's migration revision and the code's head revision."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from citydata.store.engine import async_url
    from citydata.store.migrate import current_revision, head_revision

    settings = settings_from(config)

    async def go() -> str | None:
        connect_args = ({"server_settings": {"search_path": settings.db_schema}}
                        if settings.db_schema and not settings.is_sqlite else {})
        engine = create_async_engine(async_url(settings.database_url), connect_args=connect_args)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    print(f"database: {run(go()) or 'empty'}  code head: {head_revision()}")
