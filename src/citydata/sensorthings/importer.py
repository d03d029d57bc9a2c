"""Import Observations from CSV into one Datastream, through the one write path (``ObservationIngest.create``).

The importer runs without a server: ``offline_sensorthings(settings, clock)`` builds the store, the bus (the
configured one: the in-process bus journals its events in the store, NATS publishes them to the cluster) and
the SensorThings service exactly as ``citydata.app.Platform`` does, so imported Observations are validated,
stored, counted in ``latest_observations`` and announced on the bus like any other. Rows are sent in batches;
each rejected row is reported with its line number and reason. Afterwards the rollups of the imported period
are recomputed when it lies before the rollup watermark (an import of history).
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import select

from citydata.errors import CityDataError, NotFound, ValidationFailed
from citydata.sensorthings import schema as sta
from citydata.sensorthings.ingest import Created

if TYPE_CHECKING:
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.sensorthings.service import SensorThings
    from citydata.store import Store


@dataclass(frozen=True)
class CsvColumns:
    """Which CSV columns hold what. ``result_time`` is optional (used when the column exists)."""

    time: str = "phenomenonTime"
    result: str = "result"
    result_time: str = "resultTime"
    tz: timezone | None = None     # offset given to timestamps without one (none: such rows are rejected)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ImportReport:
    datastream_id: int
    rows: int = 0
    stored: int = 0
    duplicates: int = 0            # already stored (same Datastream and phenomenonTime): left unchanged
    rejected: list[Rejected] = field(default_factory=list)
    first_time: datetime | None = None
    last_time: datetime | None = None
    rollups_refreshed: int = 0


def parse_offset(text: str) -> timezone:
    """``+07:00``, ``-0330``, ``Z`` or ``UTC`` as a fixed offset."""
    value = text.strip().upper()
    if value in ("Z", "UTC"):
        return UTC
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("+-").replace(":", "")
    if not digits.isdigit() or len(digits) not in (2, 4):
        raise ValidationFailed(f"time zone offset {text!r}: use +HH:MM", code="invalid_option", field="tz")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise ValidationFailed(f"time zone offset {text!r}: out of range", code="invalid_option", field="tz")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _time(text: str, tz: timezone | None, what: str) -> str:
    value = text.strip()
    if not value:
        raise ValidationFailed(f"{what}: empty")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError as err:
        raise ValidationFailed(f"{what}: {value!r} is not an ISO 8601 time") from err
    if parsed.tzinfo is None:
        if tz is None:
            raise ValidationFailed(f"{what}: {value!r} has no UTC offset (use --tz)")
        parsed = parsed.replace(tzinfo=tz)
    return parsed.isoformat()


def _result(text: str) -> Any:
    value = text.strip()
    if not value:
        raise ValidationFailed("result: empty")
    try:
        number = float(value)
    except ValueError:
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value      # a text result: the ingest decides whether the Datastream accepts it
    if not math.isfinite(number):
        raise ValidationFailed(f"result: {value!r} is not a finite number")
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def read_rows(fh: TextIO, columns: CsvColumns) -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
    """(line number, Observation body or why the row is refused) for each data row of the CSV."""
    reader = csv.DictReader(fh)
    header = reader.fieldnames or []
    missing = [c for c in (columns.time, columns.result) if c not in header]
    if missing:
        raise ValidationFailed(f"the CSV has no column {missing[0]!r} (columns: {', '.join(header) or 'none'})",
                               code="invalid_csv", field=missing[0])
    with_result_time = columns.result_time in header
    for row in reader:
        line = reader.line_num
        try:
            if None in row or any(row.get(c) is None for c in header):
                raise ValidationFailed("wrong number of fields")
            body: dict[str, Any] = {"phenomenonTime": _time(row[columns.time], columns.tz, "phenomenonTime"),
                                    "result": _result(row[columns.result])}
            if with_result_time and (row.get(columns.result_time) or "").strip():
                body["resultTime"] = _time(row[columns.result_time], columns.tz, "resultTime")
        except CityDataError as err:
            yield line, Rejected(line, err.message)
            continue
        yield line, body


async def datastream_exists(store: Store, datastream_id: int) -> bool:
    found = await store.scalar(select(sta.datastreams.c.id).where(sta.datastreams.c.id == datastream_id))
    return found is not None


async def import_observations(sensorthings: SensorThings, datastream_id: int,
                              rows: Iterable[tuple[int, dict[str, Any] | Rejected]], *, batch: int = 1000,
                              progress: Callable[[int], None] | None = None) -> ImportReport:
    """Write the rows to Datastream ``datastream_id`` in batches of ``batch``; ``progress(n)`` is called after
    each batch with the number of rows it held. Raises ``NotFound`` when the Datastream does not exist."""
    if batch < 1:
        raise ValidationFailed("batch: must be at least 1", code="invalid_option", field="batch")
    if not await datastream_exists(sensorthings.store, datastream_id):
        raise NotFound(f"Datastream({datastream_id}) does not exist", code="stream_not_found")
    report = ImportReport(datastream_id)
    pending: list[tuple[int, dict[str, Any]]] = []

    async def send() -> None:
        results = await sensorthings.ingest.create([body for _, body in pending], stream_id=datastream_id,
                                                   multi=False, channel="import")
        for (line, body), outcome in zip(pending, results, strict=True):
            if isinstance(outcome, Created):
                if outcome.created:
                    report.stored += 1
                else:
                    report.duplicates += 1
                at = datetime.fromisoformat(body["phenomenonTime"])
                report.first_time = at if report.first_time is None else min(report.first_time, at)
                report.last_time = at if report.last_time is None else max(report.last_time, at)
            else:
                report.rejected.append(Rejected(line, outcome.message))
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for line, item in rows:
        report.rows += 1
        if isinstance(item, Rejected):
            report.rejected.append(item)
            if progress is not None:
                progress(1)
            continue
        pending.append((line, item))
        if len(pending) >= batch:
            await send()
    if pending:
        await send()
    report.rejected.sort(key=lambda r: r.line)
    return report


@contextlib.asynccontextmanager
async def offline_sensorthings(settings: Settings, clock: Clock) -> AsyncIterator[SensorThings]:
    """The store, the bus and the SensorThings service, started as the Platform starts them (no HTTP, no
    MQTT), for commands that work on the database directly. Stopped in reverse order."""
    from citydata.bus import create_bus
    from citydata.ops.metrics import Metrics
    from citydata.sensorthings.service import SensorThings
    from citydata.store import create_store

    store = create_store(settings, clock)
    await store.start()
    try:
        journal = None
        if settings.bus_url.startswith("memory://"):
            from citydata.store.journal import StoreJournal

            journal = StoreJournal(store)
        bus = create_bus(settings, journal)
        await bus.start()
        try:
            yield SensorThings(store, bus, clock, Metrics(), settings.base_url)
        finally:
            await bus.stop()
            if journal is not None:
                await journal.flush()
    finally:
        await store.stop()


async def refresh_rollups(store: Store, clock: Clock, settings: Settings, report: ImportReport) -> int:
    """Recompute the rollups of the imported period where it lies before the rollup watermark."""
    if report.first_time is None or report.last_time is None or not report.stored:
        return 0
    from citydata.sensorthings.retention import RetentionService

    return await RetentionService(store, clock, settings).refresh(report.first_time, report.last_time)
