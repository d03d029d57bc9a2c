"""``citydata city load|list``: the reference geography."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from
from citydata.errors import CityDataError

app = typer.Typer(help="The reference city (boundaries, checkpoints, places).", no_args_is_help=True)


async def _with_store(settings: Any, fn: Any) -> Any:
    from citydata.clock import SystemClock
    from citydata.store import create_store

    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    try:
        return await fn(store, clock)
    finally:
        await store.stop()


@app.command("load")
def load(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                              help="GeoJSON FeatureCollection of the city's places.")],
         name: Annotated[str | None, typer.Option("--name", help="City name (default: the file stem).")] = None,
         config: ConfigOpt = None) -> None:
    """Load another city's places (features with kind, code, name_en[, name_th, parent_id])."""
    from rich.progress import Progress

    from citydata.geo import load_places, read_city_file

    settings = settings_from(config)
    try:
        places = read_city_file(file, city=name)
    except CityDataError as err:
        fail(err.message)
    city = name or places[0].city

    async def go(store: Any, clock: Any) -> int:
        with Progress(transient=True) as progress:
            task = progress.add_task(f"loading {file.name}", total=1)
            count = await load_places(store, places, city, clock)
            progress.advance(task)
        return int(count)

    print(f"loaded {run(_with_store(settings, go))} places for city {city!r}")


@app.command("list")
def list_(kind: Annotated[str | None, typer.Option(help="Only this kind of place.")] = None,
          config: ConfigOpt = None) -> None:
    """List the loaded places."""
    from rich.console import Console
    from rich.table import Table

    from citydata.geo import Geography

    settings = settings_from(config)

    async def go(store: Any, clock: Any) -> Any:
        return await Geography.from_store(store)

    geo = run(_with_store(settings, go))
    table = Table("id", "kind", "code", "name_en", "name_th")
    for p in (geo.by_kind(kind) if kind else list(geo)):
        table.add_row(p.id, p.kind, p.code, p.name_en, p.name_th or "")
    Console().print(table)
