"""``citydata import dataset FILE --as NAME`` and ``citydata datasets list|show``: government datasets, worked on
the database directly (no server needed)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from
from citydata.config import Settings

if TYPE_CHECKING:
    from citydata.datasets import DatasetService, ImportReport

app = typer.Typer(help="Imported government datasets: list, show versions.", no_args_is_help=True)


@asynccontextmanager
async def offline_datasets(settings: Settings) -> AsyncIterator[DatasetService]:
    """A started store with the reference city, and the dataset service over it."""
    from citydata.clock import SystemClock
    from citydata.datasets import DatasetService
    from citydata.geo import Geography, ensure_reference_city
    from citydata.store import create_store

    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    try:
        await ensure_reference_city(store, settings, clock)
        yield DatasetService(store, await Geography.from_store(store), clock)
    finally:
        await store.stop()


def _join(code: str | None, name: str | None, point: str | None, geometry: bool, level: str) -> Any:
    from citydata.datasets import GeoJoin

    chosen = [x for x in (code, name, point, geometry or None) if x]
    if len(chosen) > 1:
        fail("give at most one of --code, --name, --point, --geometry", 2)
    if code:
        return GeoJoin("code", (code,), level)
    if name:
        return GeoJoin("name", (name,), level)
    if point:
        parts = [p.strip() for p in point.split(",")]
        if len(parts) != 2 or not all(parts):
            fail("--point takes LAT_COLUMN,LON_COLUMN", 2)
        return GeoJoin("point", (parts[0], parts[1]), level)
    if geometry:
        return GeoJoin("geometry", (), level)
    return None


def import_dataset(
    file: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False, readable=True,
                                                help="CSV, GeoJSON or Excel (.xlsx) file.")] = None,
    name: Annotated[str | None, typer.Option("--as", help="Dataset name (lower case, digits, _).")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Declared column type COLUMN=TYPE (integer, "
                                                                  "number, boolean, date, datetime, text); "
                                                                  "repeatable. Others are inferred.")] = None,
    require: Annotated[list[str] | None, typer.Option("--require", help="A column that must have a value; "
                                                                        "repeatable.")] = None,
    code: Annotated[str | None, typer.Option(help="Join to the geography by the DOPA code in this column.")]
    = None,
    by_name: Annotated[str | None, typer.Option("--name", help="Join by the Thai or English area name in this "
                                                               "column.")] = None,
    point: Annotated[str | None, typer.Option(help="Join by point: LAT_COLUMN,LON_COLUMN.")] = None,
    geometry: Annotated[bool, typer.Option("--geometry", help="Join by the GeoJSON feature geometry.")] = False,
    level: Annotated[str, typer.Option(help="Area level of names and points: subdistrict, district, "
                                            "province.")] = "subdistrict",
    allow_rejected: Annotated[bool, typer.Option("--allow-rejected", help="Commit the valid rows even when some "
                                                                          "are rejected (default: nothing is "
                                                                          "imported then).")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, geojson or xlsx (default: from the "
                                                             "extension).")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet (default: the first).")] = None,
    samples: Annotated[bool, typer.Option("--samples", help="Import the shipped sample Phuket datasets "
                                                            "(synthetic).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Import a government dataset file as a new version of NAME. Every rejected row is listed on stderr
    (FILE:LINE: reason). A version is committed whole or not at all; exits 3 when rows were rejected."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from citydata.datasets import ImportOptions
    from citydata.datasets.samples import SAMPLES

    settings = settings_from(config)
    if samples:
        jobs = [(s.path, s.name, s.options()) for s in SAMPLES]
    else:
        if file is None or not name:
            fail("give FILE and --as NAME (or --samples)", 2)
        declared: dict[str, str] = {}
        for item in type_ or []:
            col, sep, t = item.partition("=")
            if not sep or not col or not t:
                fail(f"--type {item!r}: use COLUMN=TYPE", 2)
            declared[col.strip()] = t.strip()
        opts = ImportOptions(types=declared, required=tuple(require or ()),
                             join=_join(code, by_name, point, geometry, level), allow_rejected=allow_rejected,
                             format=fmt, sheet=sheet)
        jobs = [(file, name, opts)]

    async def go() -> list[ImportReport]:
        out = []
        async with offline_datasets(settings) as svc:
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          transient=True, console=Console(stderr=True)) as progress:
                for path, ds_name, opts in jobs:
                    task = progress.add_task(f"importing {path.name}", total=None)

                    def advance(n: int, t: Any = task) -> None:
                        progress.advance(t, n)

                    def total(n: int, t: Any = task) -> None:
                        progress.update(t, total=n)

                    report = await svc.import_file(path, ds_name, opts, progress=advance, on_total=total)
                    out.append(report)
        return out

    reports = run(go())
    rejected = False
    for report in reports:
        for r in report.rejected:
            print(f"{report.source}:{r.line}: {r.reason}", file=sys.stderr)
        rejected = rejected or bool(report.rejected)
        if as_json:
            print(orjson.dumps(report.as_dict()).decode())
        elif report.committed:
            print(f"{report.name} version {report.version}: {report.accepted} rows imported, "
                  f"{len(report.rejected)} rejected ({report.source})")
        else:
            print(f"{report.name}: nothing imported: {len(report.rejected)} of {report.rows} rows rejected "
                  f"(fix them, or use --allow-rejected to import the {report.accepted} valid rows)")
    if rejected:
        raise typer.Exit(3)


@app.command("list")
def list_datasets(config: ConfigOpt = None) -> None:
    """The imported datasets and their current versions."""
    settings = settings_from(config)

    async def go() -> list[dict[str, Any]]:
        async with offline_datasets(settings) as svc:
            return await svc.all()

    for d in run(go()):
        print(f"{d['name']}\tv{d['current_version']}\t{d['row_count']} rows\t{d['source']}")


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="Dataset name.")],
         version: Annotated[int | None, typer.Option(help="Version (default: current).")] = None,
         config: ConfigOpt = None) -> None:
    """A dataset version's metadata (columns, geography join, rejections) and its version history, as JSON."""
    settings = settings_from(config)

    async def go() -> dict[str, Any]:
        async with offline_datasets(settings) as svc:
            meta = await svc.version(name, version)
            meta["history"] = await svc.versions(name)
            return meta

    print(orjson.dumps(run(go()), option=orjson.OPT_INDENT_2).decode())
