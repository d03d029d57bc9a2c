"""``citydata tracking rotate-keys|purge``: personal-data key rotation and the retention purge.

Run them against the platform's database (the same settings); both are safe while the platform runs (bounded
chunks through the store's writer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import typer

from citydata.cli.common import ConfigOpt, run, settings_from

if TYPE_CHECKING:
    from citydata.config import Settings
    from citydata.tracking import TrackingService

app = typer.Typer(help="Tourist tracking: key rotation and retention.", no_args_is_help=True)


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[TrackingService]:
    """The tracking service over the configured database, without timers, HTTP or MQTT."""
    from citydata.auth import AuditLog, TokenService
    from citydata.bus import create_bus
    from citydata.clock import SystemClock
    from citydata.config import parse_pii_keys, resolve_secrets
    from citydata.geo import Geography
    from citydata.store import create_store
    from citydata.tracking import TrackingService

    settings = resolve_secrets(settings)
    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    bus = create_bus(settings.model_copy(update={"bus_url": "memory://"}))
    await bus.start()
    try:
        assert settings.secret_key is not None and settings.pii_keys is not None
        secret = settings.secret_key.get_secret_value().encode()
        service = TrackingService(settings=settings, store=store, bus=bus, clock=clock,
                                  geography=await Geography.from_store(store), audit=AuditLog(store, clock),
                                  tokens=TokenService(store, secret, clock),
                                  pii_keys=parse_pii_keys(settings.pii_keys.get_secret_value()), secret_key=secret)
        yield service
    finally:
        await bus.stop()
        await store.stop()


@app.command("rotate-keys")
def rotate_keys(config: ConfigOpt = None,
                chunk: int = typer.Option(500, min=1, max=100_000, help="Rows re-encrypted per transaction.")) -> None:
    """Re-encrypt every identity field under the newest key of CITYDATA_PII_KEYS (and refresh the passport
    blind index). Put the new key first, keep the old ones until this has run, then drop them."""
    async def go() -> int:
        async with _service(settings_from(config)) as service:
            return await service.vault.rotate_keys(chunk=chunk)

    print(f"{run(go())} identities re-encrypted")


@app.command("purge")
def purge(config: ConfigOpt = None,
          chunk: int = typer.Option(5000, min=1, max=1_000_000, help="Pings deleted per transaction.")) -> None:
    """Roll up the hourly k-anonymous aggregates, then purge exact pings and identities past their retention."""
    async def go() -> dict[str, int]:
        async with _service(settings_from(config)) as service:
            return await service.retention.purge(chunk=chunk)

    print(json.dumps(run(go())))
