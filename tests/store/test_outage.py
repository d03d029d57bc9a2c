"""The store while its PostgreSQL goes away: readiness, waiting writes, and the retry budget.

Runs a private PostgreSQL (initdb + pg_ctl on a free port in a temp dir) that the tests stop and start; the
shared server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from citydata.clock import DrivenClock
from citydata.errors import Unavailable
from citydata.store import Store, create_store, schema
from tests.conftest import REQUIRE, free_port, make_settings

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster. As root, its files and processes belong to the ``postgres`` user."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="citydata-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [*self.as_user, str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = _pg_bin()
    if bindir is None:
        if REQUIRE:
            pytest.fail("initdb not found (CITYDATA_REQUIRE_SERVICES=1)")
        pytest.skip("initdb not found: PostgreSQL server binaries are not installed")
    pg = PrivatePostgres(bindir)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
async def outage_store(private_pg: PrivatePostgres, tmp_path: Path,
                       request: pytest.FixtureRequest) -> Any:
    """A store on the private server (fresh schema); the server is running again after the test."""
    retry_s = getattr(request, "param", 30.0)
    settings = make_settings(tmp_path, db_url=private_pg.url, db_schema=f"o_{uuid.uuid4().hex[:10]}",
                             db_retry_s=retry_s, db_batch_ms=5.0, shutdown_grace_s=2.0)
    st = create_store(settings, DrivenClock())
    await st.start()
    try:
        yield st
    finally:
        if not _running(private_pg):
            await asyncio.to_thread(private_pg.start)
        await st.stop()


def _running(pg: PrivatePostgres) -> bool:
    return (pg.data / "postmaster.pid").exists()


def rows(stream: int, n: int) -> list[dict[str, Any]]:
    return [{"datastream_id": stream, "phenomenon_time": T0 + timedelta(seconds=i), "result_number": 1.0 * i}
            for i in range(n)]


async def stored(store: Store) -> int:
    return int(await store.scalar(select(func.count()).select_from(schema.observations)))


async def test_ready_turns_false_quickly_when_postgres_stops(outage_store: Store,
                                                             private_pg: PrivatePostgres) -> None:
    assert await outage_store.ready() == (True, "ok")
    await asyncio.to_thread(private_pg.stop)
    started = time.monotonic()
    ok, why = await outage_store.ready()
    elapsed = time.monotonic() - started
    assert not ok and "unreachable" in why
    assert elapsed < 3.0
    await asyncio.to_thread(private_pg.start)
    assert (await outage_store.ready())[0]


async def test_write_during_outage_waits_and_lands_when_postgres_returns(
        outage_store: Store, private_pg: PrivatePostgres) -> None:
    assert await outage_store.insert_rows(schema.observations, rows(1, 100)) == 100
    await asyncio.to_thread(private_pg.stop)
    pending = [asyncio.ensure_future(outage_store.insert_rows(schema.observations, rows(2 + i, 50)))
               for i in range(4)]
    meta = asyncio.ensure_future(outage_store.set_meta("during", "outage"))
    await asyncio.sleep(1.5)
    assert not any(t.done() for t in [*pending, meta])  # waiting, not failed
    assert outage_store.writer is not None and not outage_store.writer.available
    assert outage_store.writer.stats.retries > 0
    assert not (await outage_store.ready())[0]
    await asyncio.to_thread(private_pg.start)
    results = await asyncio.wait_for(asyncio.gather(*pending, meta), timeout=20)
    assert results == [50, 50, 50, 50, None]
    assert await stored(outage_store) == 300  # nothing lost, nothing doubled
    assert await outage_store.get_meta("during") == "outage"
    assert outage_store.writer.available
    assert (await outage_store.ready())[0]


@pytest.mark.parametrize("outage_store", [2.5], indirect=True)
async def test_long_outage_fails_writes_with_503_after_the_retry_budget(outage_store: Store,
                                                                        private_pg: PrivatePostgres) -> None:
    assert await outage_store.insert_rows(schema.observations, rows(1, 10)) == 10
    await asyncio.to_thread(private_pg.stop)
    started = time.monotonic()
    with pytest.raises(Unavailable) as failed:
        await outage_store.insert_rows(schema.observations, rows(2, 10))
    elapsed = time.monotonic() - started
    assert failed.value.status == 503 and failed.value.code == "store_unavailable"
    assert 2.4 <= elapsed < 10.0
    # Past the budget, later writes fail promptly instead of each waiting the whole budget again.
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await outage_store.insert_rows(schema.observations, rows(3, 10))
    assert time.monotonic() - started < 1.5
    # And the store recovers by itself once the database is back.
    await asyncio.to_thread(private_pg.start)
    assert await outage_store.insert_rows(schema.observations, rows(4, 10)) == 10
    assert await stored(outage_store) == 20
