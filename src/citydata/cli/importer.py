"""``citydata import observations`` and ``citydata db purge``: work on the database directly, no server needed.

Both build the store, the bus and the SensorThings service the way the Platform does
(``citydata.sensorthings.importer.offline_sensorthings``), so they may run while a platform serves the same
database (the store's writers serialise on SQLite's write lock or PostgreSQL's row locks)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from
from citydata.cli.datasets import import_dataset
from citydata.errors import CityDataError

app = typer.Typer(help="Import data from files (through the same write path as live data).", no_args_is_help=True)
app.command("dataset")(import_dataset)


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return max(0, sum(1 for _ in fh) - 1)


@app.command("observations")
def observations(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV with a header row.")],
    datastream: Annotated[int, typer.Option("--datastream", help="Id of the Datastream to add to.")],
    time_column: Annotated[str, typer.Option(help="Column with the ISO 8601 phenomenon time.")] = "phenomenonTime",
    result_column: Annotated[str, typer.Option(help="Column with the result.")] = "result",
    result_time_column: Annotated[str, typer.Option(help="Column with the result time (optional).")]
    = "resultTime",
    tz: Annotated[str | None, typer.Option(help="UTC offset for times without one, e.g. +07:00 "
                                                "(default: such rows are rejected).")] = None,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Observations per write.")] = 1000,
    config: ConfigOpt = None,
) -> None:
    """Add the Observations of a CSV file to a Datastream. Rejected rows are listed on stderr (line: reason);
    rows already stored (same Datastream and phenomenonTime) are skipped. Exits 1 when the Datastream does not
    exist, 3 when some rows were rejected."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from citydata.clock import SystemClock
    from citydata.sensorthings.importer import (
        CsvColumns,
        ImportReport,
        import_observations,
        offline_sensorthings,
        parse_offset,
        read_rows,
        refresh_rollups,
    )

    settings = settings_from(config)
    try:
        columns = CsvColumns(time_column, result_column, result_time_column, parse_offset(tz) if tz else None)
    except CityDataError as err:
        fail(err.message, 2)
    total = _count_lines(file)

    async def go() -> ImportReport:
        clock = SystemClock()
        async with offline_sensorthings(settings, clock) as sta:
            with file.open(encoding="utf-8-sig", newline="") as fh, Progress(
                    TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=True, console=_stderr_console()) as progress:
                task = progress.add_task(f"importing {file.name}", total=total)
                report = await import_observations(sta, datastream, read_rows(fh, columns), batch=batch,
                                                   progress=lambda n: progress.advance(task, n))
            report.rollups_refreshed = await refresh_rollups(sta.store, clock, settings, report)
            return report

    report = run(go())
    for rejected in report.rejected:
        print(f"{file.name}:{rejected.line}: {rejected.reason}", file=sys.stderr)
    span = (f", {report.first_time.isoformat()} .. {report.last_time.isoformat()}"
            if report.first_time and report.last_time else "")
    print(f"Datastream({datastream}): {report.rows} rows, {report.stored} stored, {report.duplicates} already "
          f"stored, {len(report.rejected)} rejected{span}")
    if report.rejected:
        raise typer.Exit(3)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def purge(
    older_than_days: Annotated[int | None, typer.Option(
        min=1, help="Purge raw Observations older than this (default: CITYDATA_STA_RAW_RETENTION_DAYS).")] = None,
    rollup_only: Annotated[bool, typer.Option("--rollup-only", help="Only bring the rollups up to date.")]
    = False,
    config: ConfigOpt = None,
) -> None:
    """Roll up Observations into hourly and daily aggregates, then purge the expired raw ones (each stream's
    latest Observation is kept)."""
    from citydata.clock import SystemClock
    from citydata.sensorthings.retention import RetentionService, floor_hour
    from citydata.store import create_store

    settings = settings_from(config)
    days = older_than_days if older_than_days is not None else settings.sta_raw_retention_days

    async def go() -> tuple[datetime, int, int]:
        clock = SystemClock()
        store = create_store(settings, clock)
        await store.start()
        try:
            service = RetentionService(store, clock, settings)
            until = floor_hour(clock.now() - service.lag)
            rolled = await service.rollup(until)
            purged = 0
            if days and not rollup_only:
                purged = await service.purge(datetime.now(UTC) - timedelta(days=days))
            await service.drop_orphans()
            return until, rolled, purged
        finally:
            await store.stop()

    until, rolled, purged = run(go())
    note = "" if days or rollup_only else " (raw retention is 0: nothing purged; use --older-than-days)"
    print(f"rolled up to {until.isoformat()}: {rolled} rollup rows written, {purged} raw Observations purged{note}")
