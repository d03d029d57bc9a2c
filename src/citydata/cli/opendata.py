"""``citydata opendata keys create|list|revoke|usage`` and ``citydata opendata export``: open-data API keys for
startups and dataset exports, on the database directly (no server needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from
from citydata.config import Settings

if TYPE_CHECKING:
    from citydata.opendata.service import OpenDataService

app = typer.Typer(help="Open data: API keys for startups, the catalogue, exports.", no_args_is_help=True)
keys_app = typer.Typer(help="Open-data API keys (rate limited, usage counted).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@asynccontextmanager
async def offline_opendata(settings: Settings) -> AsyncIterator[OpenDataService]:
    from citydata.analytics import AnalyticsService
    from citydata.cli.datasets import offline_datasets
    from citydata.config import resolve_secrets
    from citydata.opendata.keys import KeyService
    from citydata.opendata.service import OpenDataService

    settings = resolve_secrets(settings)
    assert settings.secret_key is not None
    async with offline_datasets(settings) as datasets:
        keys = KeyService(datasets.store, datasets.clock, settings.secret_key.get_secret_value().encode(),
                          default_rate=settings.opendata_key_rate_per_min,
                          anonymous_rate=settings.opendata_anonymous_rate_per_min)
        analytics = AnalyticsService(datasets.store, datasets.geography, settings, datasets.clock)
        yield OpenDataService(analytics, datasets.geography, settings, datasets.clock, keys)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option("--name", help="The startup or application.")],
    organization: Annotated[str | None, typer.Option("--org", help="Its organization.")] = None,
    rate: Annotated[int | None, typer.Option("--rate", min=1, max=100_000,
                                             help="Requests per minute (default CITYDATA_OPENDATA_KEY_RATE_PER_MIN).")]
    = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print it alone on stdout (it is shown only once)."""
    settings = settings_from(config)

    async def go() -> str:
        async with offline_opendata(settings) as svc:
            _, key = await svc.keys.create(name, organization, rate, created_by="cli")
            return key

    print(run(go()))


@keys_app.command("list")
def list_keys(config: ConfigOpt = None) -> None:
    """Keys with their rate limits and request counts (JSON lines)."""
    settings = settings_from(config)

    async def go() -> list[dict[str, Any]]:
        async with offline_opendata(settings) as svc:
            return await svc.keys.all()

    for item in run(go()):
        print(orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS).decode())


@keys_app.command("usage")
def usage(key_id: Annotated[str, typer.Argument(help="Key id (from `keys list`).")], config: ConfigOpt = None) -> None:
    """A key's requests (and rate-limited requests) per day."""
    settings = settings_from(config)

    async def go() -> list[dict[str, Any]]:
        async with offline_opendata(settings) as svc:
            return await svc.keys.usage(key_id)

    for day in run(go()):
        print(f"{day['day']}\t{day['requests']}\t{day['limited']} limited")


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="Key id.")], config: ConfigOpt = None) -> None:
    """Revoke a key (requests with it get 401 from then on)."""
    settings = settings_from(config)

    async def go() -> None:
        async with offline_opendata(settings) as svc:
            await svc.keys.revoke(key_id)

    run(go())
    print(f"revoked {key_id}")


@app.command("datasets")
def datasets(config: ConfigOpt = None) -> None:
    """The open-data catalogue: name, organization and English title."""
    from citydata.opendata.catalogue import load_catalogue

    del config
    for ds in load_catalogue().datasets:
        print(f"{ds.name}\t{ds.organization}\t{ds.title_en}")


@app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Open dataset name (see `citydata opendata datasets`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .csv, .geojson or .parquet.")],
    config: ConfigOpt = None,
) -> None:
    """Write an open dataset (anonymised, exactly as published) to a file."""
    settings = settings_from(config)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "geojson", "parquet"):
        fail("--out must end in .csv, .geojson or .parquet", 2)

    async def go() -> bytes:
        async with offline_opendata(settings) as svc:
            return await svc.download(name, fmt)

    body = run(go())
    out.write_bytes(body)
    print(f"wrote {out} ({len(body)} bytes)")
