"""The single writer: one task that turns many small writes into few transactions.

Callers hand it either rows for a bulk insert (``insert_rows``) or an operation (``write``: an async function of
a connection). It waits up to ``batch_ms`` or ``batch_rows`` rows, runs everything in one transaction (each
operation in its own savepoint, so one bad request never fails its neighbours), commits, and only then resolves
the callers' futures: an acknowledged write is a committed write.

When the database is unreachable the batch is retried with backoff for up to ``retry_s``; meanwhile new writes
queue up to ``buffer_rows`` and beyond that are refused at once with 503. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citydata.errors import CityDataError, Conflict, Unavailable

log = logging.getLogger(__name__)

WriteOp = Callable[[AsyncConnection], Awaitable[Any]]
ConflictMode = Literal["ignore", "error"]


@dataclass(eq=False)
class _Job:
    future: asyncio.Future[Any]
    rows: int
    op: WriteOp | None = None
    table: Table | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    conflict: ConflictMode = "ignore"


@dataclass
class WriterStats:
    commits: int = 0
    rows: int = 0
    jobs: int = 0
    retries: int = 0
    refused: int = 0
    failed_batches: int = 0
    buffered_rows: int = 0
    last_error: str | None = None

    @property
    def rows_per_commit(self) -> float:
        return self.rows / self.commits if self.commits else 0.0


def is_connection_error(err: BaseException) -> bool:
    """True for errors that mean 'the database is not there right now' (retry), not 'this write is bad'."""
    if isinstance(err, (OSError, ConnectionError, asyncio.TimeoutError)):
        return True
    if isinstance(err, DBAPIError):
        if err.connection_invalidated:
            return True
        orig = getattr(err, "orig", None)
        if isinstance(orig, (OSError, ConnectionError)):
            return True
        name = type(orig).__name__ if orig is not None else ""
        if any(s in name for s in _PG_CONNECTION_ERRORS):
            return True
        if isinstance(err, OperationalError):
            msg = str(err).lower()
            return any(s in msg for s in _SQLITE_TRANSIENT) or "connect" in msg
    cause = err.__cause__
    return cause is not None and cause is not err and is_connection_error(cause)


_PG_CONNECTION_ERRORS = ("ConnectionDoesNotExist", "CannotConnectNow", "ConnectionFailure", "InterfaceError",
                         "AdminShutdown", "CrashShutdown", "ConnectionRejection", "TooManyConnections")
_SQLITE_TRANSIENT = ("database is locked", "disk i/o error", "unable to open database")


class BulkInserter:
    """Dialect-specific fast path for many rows into one table (executemany on SQLite, COPY on PostgreSQL)."""

    async def insert(self, conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
                     conflict: ConflictMode) -> int:
        raise NotImplementedError


class Writer:
    def __init__(self, engine: AsyncEngine, bulk: BulkInserter, *, batch_rows: int, batch_ms: float,
                 buffer_rows: int, retry_s: float) -> None:
        self.engine, self.bulk = engine, bulk
        self.batch_rows, self.batch_s = batch_rows, batch_ms / 1000.0
        self.buffer_rows, self.retry_s = buffer_rows, retry_s
        self.stats = WriterStats()
        self.available = True
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Flush what is queued (up to ``grace_s``), then stop."""
        self._closing = True
        if self._task is None:
            return
        await self._queue.put(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_s)
        except TimeoutError:
            log.error("writer did not flush within %.1fs; %d rows still queued", grace_s,
                      self.stats.buffered_rows)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_queued(Unavailable("the platform is shutting down", code="shutting_down"))

    def depth(self) -> int:
        return self.stats.buffered_rows

    # -- submitting ---------------------------------------------------------------------------------------------
    def _admit(self, rows: int) -> asyncio.Future[Any]:
        if self._closing or self._task is None:
            self.stats.refused += rows
            raise Unavailable("the store is not accepting writes", code="store_stopped", retry_after=5)
        if self.stats.buffered_rows + rows > self.buffer_rows:
            self.stats.refused += rows
            raise Unavailable("write buffer full; retry later", code="overloaded", retry_after=1)
        self.stats.buffered_rows += rows
        return asyncio.get_running_loop().create_future()

    async def write(self, op: WriteOp, rows: int = 1) -> Any:
        fut = self._admit(rows)
        self._queue.put_nowait(_Job(fut, rows, op=op))
        return await fut

    async def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]],
                          conflict: ConflictMode = "ignore") -> int:
        """Insert rows; returns how many were new (conflicting rows are ignored, or raise ``Conflict``)."""
        if not rows:
            return 0
        fut = self._admit(len(rows))
        self._queue.put_nowait(_Job(fut, len(rows), table=table, records=list(rows), conflict=conflict))
        return int(await fut)

    # -- the loop -------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self.batch_s
            while rows < self.batch_rows:
                timeout = deadline - time.monotonic()
                try:
                    job = self._queue.get_nowait() if timeout <= 0 else \
                        await asyncio.wait_for(self._queue.get(), timeout)
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
                rows += job.rows
            await self._commit_with_retry(batch)
        # drain whatever is left (shutdown flush)
        rest: list[_Job] = []
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                rest.append(job)
        for i in range(0, len(rest), 64):
            await self._commit_with_retry(rest[i:i + 64])

    async def _commit_with_retry(self, batch: list[_Job]) -> None:
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                results = await self._commit(batch)
            except Exception as err:
                if is_connection_error(err) and time.monotonic() - started < self.retry_s \
                        and not (self._closing and time.monotonic() - started > 1.0):
                    self.available = False
                    self.stats.retries += 1
                    self.stats.last_error = f"{type(err).__name__}: {str(err)[:200]}"
                    log.warning("store unreachable (%s); retrying batch of %d jobs in %.2fs",
                                type(err).__name__, len(batch), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                self.stats.failed_batches += 1
                log.error("write batch failed: %s", type(err).__name__)
                failure = err if isinstance(err, CityDataError) else Unavailable(
                    "the database is unavailable; the write was not stored", code="store_unavailable",
                    retry_after=5)
                for job in batch:
                    self._settle(job, exc=failure)
                return
            self.available = True
            for job, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    self._settle(job, exc=result)
                else:
                    self._settle(job, value=result)
            return

    def _settle(self, job: _Job, *, value: Any = None, exc: BaseException | None = None) -> None:
        self.stats.buffered_rows -= job.rows
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(value)

    async def _commit(self, batch: list[_Job]) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        async with self.engine.connect() as conn:
            async with conn.begin():
                # Bulk jobs for the same table and conflict mode go in one statement.
                groups: dict[tuple[str, str], list[int]] = {}
                for i, job in enumerate(batch):
                    if job.table is not None:
                        groups.setdefault((job.table.name, job.conflict), []).append(i)
                for indexes in groups.values():
                    await self._bulk(conn, batch, indexes, results)
                for i, job in enumerate(batch):
                    if job.op is not None:
                        results[i] = await self._op(conn, job.op)
            rows = sum(j.rows for j in batch)
        self.stats.commits += 1
        self.stats.jobs += len(batch)
        self.stats.rows += rows
        return results

    async def _op(self, conn: AsyncConnection, op: WriteOp) -> Any:
        savepoint = await conn.begin_nested()
        try:
            value = await op(conn)
        except Exception as err:
            await savepoint.rollback()
            if is_connection_error(err):
                raise
            return self._wrap(err)
        await savepoint.commit()
        return value

    async def _bulk(self, conn: AsyncConnection, batch: list[_Job], indexes: list[int],
                    results: list[Any]) -> None:
        first = batch[indexes[0]]
        assert first.table is not None
        if len(indexes) > 1:
            merged = [r for i in indexes for r in batch[i].records]
            savepoint = await conn.begin_nested()
            try:
                await self.bulk.insert(conn, first.table, merged, first.conflict)
            except Exception as err:
                await savepoint.rollback()
                if is_connection_error(err):
                    raise
            else:
                await savepoint.commit()
                # Per-job counts of ignored duplicates are unknown when merged: report rows submitted.
                for i in indexes:
                    results[i] = len(batch[i].records)
                return
        for i in indexes:  # alone, or the merged statement failed: isolate each job
            job = batch[i]
            assert job.table is not None
            savepoint = await conn.begin_nested()
            try:
                results[i] = await self.bulk.insert(conn, job.table, job.records, job.conflict)
            except Exception as err:
                await savepoint.rollback()
                if is_connection_error(err):
                    raise
                results[i] = self._wrap(err)
            else:
                await savepoint.commit()

    @staticmethod
    def _wrap(err: Exception) -> BaseException:
        if isinstance(err, CityDataError):
            return err
        if isinstance(err, IntegrityError):
            return Conflict("the write conflicts with stored data", code="integrity_conflict")
        log.exception("write operation failed")
        return err

    def _fail_queued(self, exc: CityDataError) -> None:
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                self._settle(job, exc=exc)


async def ping(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))
