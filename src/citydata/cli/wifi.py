"""``citydata wifi import FILE`` and ``citydata wifi rebuild``: replay WiFi logs into the store, rebuild rollups.

Both work on the configured database directly (the same settings as the platform). Run an import while the
platform runs only for files whose sessions are complete (a day's RADIUS detail file, yesterday's syslog): the
import keeps its own session state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from

if TYPE_CHECKING:
    from citydata.config import Settings
    from citydata.wifi import WifiService

app = typer.Typer(help="WiFi footfall: import session logs, rebuild rollups.", no_args_is_help=True)
CHUNK = 5000


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[WifiService]:
    from citydata.clock import SystemClock
    from citydata.config import resolve_secrets
    from citydata.geo import Geography, ensure_reference_city
    from citydata.ingest.deadletter import DeadLetters
    from citydata.ops.metrics import Metrics
    from citydata.store import create_store
    from citydata.wifi import WifiService

    settings = resolve_secrets(settings)
    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    try:
        assert settings.secret_key is not None
        await ensure_reference_city(store, settings, clock)
        metrics = Metrics()
        service = WifiService(settings=settings.model_copy(update={"wifi_flush_s": 0, "wifi_purge_interval_s": 0}),
                              store=store, clock=clock, metrics=metrics, geography=await Geography.from_store(store),
                              dead_letters=DeadLetters(store, clock, metrics),
                              secret_key=settings.secret_key.get_secret_value().encode())
        await service.start(timers=False, listen=False)
        try:
            yield service
        finally:
            await service.stop()
    finally:
        await store.stop()


@app.command("import")
def import_file(path: Annotated[Path, typer.Argument(help="Log file: JSON lines, syslog lines or a FreeRADIUS "
                                                          "detail file.")],
                fmt: Annotated[str, typer.Option("--format", help="jsonl, radius, hostapd, cisco, aruba, syslog "
                                                                  "(detect per line) or detail (FreeRADIUS detail "
                                                                  "file).")] = "jsonl",
                config: ConfigOpt = None) -> None:
    """Replay a file of WiFi session records: pseudonymised, stored and rolled up like live input; bad records
    are dead-lettered (source wifi) and counted. Prints a JSON summary."""
    from citydata.wifi.parsers.base import formats

    if fmt not in [*formats(), "detail"]:
        fail(f"unknown format {fmt!r} (known: {', '.join([*formats(), 'detail'])})")
    if not path.is_file():
        fail(f"{path}: no such file")
    text = path.read_text(encoding="utf-8", errors="backslashreplace")

    async def go() -> dict[str, int]:
        async with _service(settings_from(config)) as service:
            accepted = rejected = 0
            if fmt == "detail":
                from citydata.wifi.model import ParseError, RawRecord
                from citydata.wifi.parsers.radius import parse_detail

                records: list[RawRecord] = []
                for n, rec in parse_detail(text, service.context()):
                    if isinstance(rec, ParseError):
                        rejected += 1
                        await service.dead_letters.record("wifi", f"import:{path.name}", None, str(rec),
                                                          {"line": n, "code": "unparseable"})
                    else:
                        records.append(rec)
                for i in range(0, len(records), CHUNK):
                    res = await service.ingest_records(records[i:i + CHUNK], f"import:{path.name}")
                    accepted, rejected = accepted + res.accepted, rejected + res.rejected
            else:
                lines = text.splitlines()
                for i in range(0, len(lines), CHUNK):
                    res = await service.ingest_lines(lines[i:i + CHUNK], fmt, f"import:{path.name}")
                    accepted, rejected = accepted + res.accepted, rejected + res.rejected
            flushed = await service.flush(days=True)
            return {"accepted": accepted, "rejected": rejected, "hours_rebuilt": flushed["hours"],
                    "days_rebuilt": flushed["days"]}

    typer.echo(json.dumps(run(go())))


@app.command("rebuild")
def rebuild(start: Annotated[datetime, typer.Option("--from", help="First hour (with a zone, e.g. "
                                                                     "2026-11-01T00:00:00+07:00).")],
            end: Annotated[datetime, typer.Option("--to", help="End (exclusive).")],
            config: ConfigOpt = None) -> None:
    """Rebuild the hourly and daily rollups of a time range from the stored presence (after a restore, or a
    change of a hotspot's zone). Presence older than CITYDATA_WIFI_RAW_RETENTION_DAYS is gone: those rollups
    are kept as they are."""
    if start.tzinfo is None or end.tzinfo is None:
        fail("--from and --to need a time zone (e.g. +07:00)")
    if end <= start:
        fail("--to must be after --from")
    if end - start > timedelta(days=400):
        fail("at most 400 days at a time")

    async def go() -> dict[str, int]:
        async with _service(settings_from(config)) as service:
            hour = int(start.timestamp()) // 3600 * 3600
            while hour < end.timestamp():
                service.rollups.dirty_hours.add(hour)
                hour += 3600
            hours, days = await service.rollups.recompute_dirty(days=True)
            return {"hours_rebuilt": hours, "days_rebuilt": days}

    typer.echo(json.dumps(run(go())))
