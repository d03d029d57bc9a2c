"""``citydata rules load FILE|DIR`` and ``citydata rules list``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from
from citydata.errors import CityDataError

app = typer.Typer(help="Alert rules (YAML or JSON, validated and versioned).", no_args_is_help=True)


async def _with_service(settings: Any, fn: Any) -> Any:
    from citydata.bus.memory import MemoryBus
    from citydata.clock import SystemClock
    from citydata.geo import Geography
    from citydata.rules import RulesService
    from citydata.store import create_store
    from citydata.store.journal import StoreJournal

    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    # rules.changed goes into the journal, so a running engine on this database reloads the rules
    journal = StoreJournal(store) if settings.bus_url.startswith("memory://") else None
    bus: Any
    if journal is not None:
        bus = MemoryBus(journal=journal)
    else:
        from citydata.bus import create_bus

        bus = create_bus(settings, None)
    await bus.start()
    try:
        geography = await Geography.from_store(store)
        service = RulesService(store, bus, clock, geography=geography if len(geography) else None)
        return await fn(service)
    finally:
        await bus.stop()
        await store.stop()


@app.command("load")
def load(path: Annotated[Path, typer.Argument(exists=True, readable=True,
                                              help="A rule file (YAML or JSON) or a directory of them.")],
         config: ConfigOpt = None) -> None:
    """Validate and save rules (all or nothing); changed rules get a new version."""
    from citydata.rules import read_path

    settings = settings_from(config)
    try:
        docs = read_path(path)
    except CityDataError as err:
        fail(err.message)

    async def go(service: Any) -> list[tuple[str, str]]:
        return await service.load(docs, by="cli", origin="cli")  # type: ignore[no-any-return]

    for rule_id, outcome in run(_with_service(settings, go)):
        print(f"{rule_id}\t{outcome}")


@app.command("list")
def list_(config: ConfigOpt = None) -> None:
    """List the rules with their version and state."""
    from rich.console import Console
    from rich.table import Table

    settings = settings_from(config)

    async def go(service: Any) -> Any:
        return await service.list()

    table = Table("id", "version", "enabled", "alert kind", "name", "origin")
    for r in run(_with_service(settings, go)):
        table.add_row(r["id"], str(r["version"]), "yes" if r["enabled"] else "no", r["alert"]["kind"], r["name"],
                      r.get("origin") or "")
    Console().print(table)
