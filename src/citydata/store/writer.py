"""The single writer: one task that turns many small writes into few transactions.

Callers hand it either rows for a bulk insert (``insert_rows``) or an operation (``write``: an async function
of a connection). It waits up to ``batch_ms`` or ``batch_rows`` rows, runs everything in one transaction (each
operation in its own savepoint, so one bad request never fails its neighbours), commits, and only then
resolves the callers' futures: an acknowledged write is a committed write.

When the database is unreachable the batch is retried with backoff for up to ``retry_s`` (counted from the
start of the outage, not per batch); meanwhile new writes queue up to ``buffer_rows`` and beyond that are
refused at once with 503. Once the outage has lasted longer than ``retry_s`` each batch gets one more attempt
and then fails with 503 (``store_unavailable``), until the database answers again. Nothing is dropped
silently.

A batch whose connection is lost while committing is retried as a whole; bulk inserts (``conflict="ignore"``)
are idempotent, operations given to ``write`` should be too (upserts, ``ON CONFLICT``), or accept that a write
in flight at the moment the database dies may be applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citydata.errors import CityDataError, Conflict, Unavailable, ValidationFailed

log = logging.getLogger(__name__)

WriteOp = Callable[[AsyncConnection], Awaitable[Any]]
ConflictMode = Literal["ignore", "error"]


@dataclass(eq=False)
class _Job:
    future: asyncio.Future[Any]
    rows: int
    op: WriteOp | None = None
    table: Table | None = None
    records: list[Any] = field(default_factory=list)   # driver-ready parameters (BulkInserter.prepare)
    columns: tuple[str, ...] = ()
    conflict: ConflictMode = "ignore"
    heavy: bool = False


@dataclass(frozen=True)
class _Failed:
    """A job's failure, kept apart from values an operation may legitimately return."""

    error: BaseException


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
    commit_seconds: float = 0.0     # time spent in transactions that committed
    failed_jobs: int = 0            # jobs that failed on their own (savepoint rolled back), batch unaffected

    @property
    def rows_per_commit(self) -> float:
        return self.rows / self.commits if self.commits else 0.0

    @property
    def jobs_per_commit(self) -> float:
        return self.jobs / self.commits if self.commits else 0.0


# SQLSTATEs that mean "the server is not (or no longer) there": class 08 (connection exception), 57P01-57P03
# (admin/crash shutdown, cannot connect now), 53300 (too many connections).
_PG_RETRY_STATES = ("57P01", "57P02", "57P03", "53300")
_PG_CONNECTION_ERRORS = ("ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError",
                         "AdminShutdownError", "CrashShutdownError", "ConnectionRejectionError",
                         "TooManyConnectionsError", "ClientCannotConnectError", "ConnectionResetError",
                         "PostgresConnectionError")
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "disk i/o error",
                     "unable to open database")
_GENERIC = ("OperationalError", "InterfaceError")
_PG_MESSAGES = ("connection is closed", "connection was closed", "connection refused",
                "server closed the connection", "terminating connection", "the database system is")


def _chain(err: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = err
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return out


def is_connection_error(err: BaseException) -> bool:
    """True for errors that mean 'the database is not there right now' (retry), not 'this write is bad'.

    Constraint violations, syntax errors and bad values are never retryable, even when they arrive wrapped."""
    chain = _chain(err)
    for e in chain:
        if isinstance(e, (IntegrityError, CityDataError)):
            return False
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and code and not (code.startswith("08") or code in _PG_RETRY_STATES):
            return False  # the server answered with a definite, non-connection error
    for e in chain:
        if isinstance(e, (OSError, ConnectionError, TimeoutError)):
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and (code.startswith("08") or code in _PG_RETRY_STATES):
            return True
        if type(e).__name__ in _PG_CONNECTION_ERRORS:
            return True
        msg = str(e).lower()
        generic = isinstance(e, OperationalError) or type(e).__name__ in _GENERIC
        if generic and (any(s in msg for s in _SQLITE_TRANSIENT) or any(s in msg for s in _PG_MESSAGES)):
            return True
    return False


class BulkInserter:
    """Dialect-specific fast path for many rows into one table (executemany on SQLite, COPY on PostgreSQL)."""

    def prepare(self, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> list[Any]:
        """Turn row dicts into the driver's parameters. Runs in the caller's task, at submission, so the
        conversion overlaps with the writer's database work (and a bad value fails its own caller at once)."""
        raise NotImplementedError

    async def insert_parts(self, conn: AsyncConnection, table: Table, columns: tuple[str, ...],
                           parts: Sequence[list[Any]], conflict: ConflictMode, *,
                           exact: bool = False) -> list[int]:
        """Insert several callers' prepared rows (all with ``columns``) at once; returns the new rows per part.

        Rows that conflict with stored rows, or with rows of an earlier part, count for the earlier one. On
        error the transaction may hold part of the rows: the writer then rolls it back (or the job's
        savepoint). ``exact``: the caller already knows duplicates are there (skip any optimistic path)."""
        raise NotImplementedError

    async def insert(self, conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
                     conflict: ConflictMode) -> int:
        columns = tuple(rows[0].keys())
        return (await self.insert_parts(conn, table, columns, [self.prepare(table, columns, rows)],
                                        conflict))[0]


class Writer:
    def __init__(self, engine: AsyncEngine, bulk: BulkInserter, *, batch_rows: int, batch_ms: float,
                 buffer_rows: int, retry_s: float) -> None:
        self.engine, self.bulk = engine, bulk
        self.batch_rows, self.batch_s = batch_rows, batch_ms / 1000.0
        self.buffer_rows, self.retry_s = buffer_rows, retry_s
        # A batch is due at batch_rows; what is already queued by then joins it, up to this many rows (group
        # commit: under a backlog, fewer and bigger transactions).
        self.max_batch_rows = max(batch_rows, min(8 * batch_rows, 50_000))
        self.stats = WriterStats()
        self.available = True
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._room = asyncio.Event()  # set whenever buffered rows are settled (room may have been made)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._outage_since: float | None = None
        self._inflight: list[_Job] = []
        self._conn: AsyncConnection | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Flush what is queued (up to ``grace_s``), then stop."""
        if self._closing:
            return
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
        self._fail_queued(Unavailable("the platform is shutting down", code="shutting_down", retry_after=5))
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def depth(self) -> int:
        return self.stats.buffered_rows

    # -- submitting ------------------------------------------------------------------------------------------
    def _admit(self, rows: int) -> asyncio.Future[Any]:
        if self._closing or self._task is None or self._task.done():
            self.stats.refused += rows
            raise Unavailable("the store is not accepting writes", code="store_stopped", retry_after=5)
        # A write bigger than the whole buffer is admitted when the buffer is empty (alone it cannot wait for
        # room that will never come: refusing it with "retry later" would refuse it for ever).
        if self.stats.buffered_rows and self.stats.buffered_rows + rows > self.buffer_rows:
            self.stats.refused += rows
            raise Unavailable("write buffer full; retry later", code="overloaded", retry_after=1)
        self.stats.buffered_rows += rows
        return asyncio.get_running_loop().create_future()

    async def _admit_when_room(self, rows: int, wait: bool) -> asyncio.Future[Any]:
        """``_admit``; with ``wait``, a full buffer is waited out instead of refused (the platform's own writes:
        seeding at start, timers), since there is no client to retry them."""
        while True:
            if not wait or self._closing or not self.stats.buffered_rows \
                    or self.stats.buffered_rows + rows <= self.buffer_rows:
                return self._admit(rows)
            self._room.clear()
            await self._room.wait()

    async def write(self, op: WriteOp, rows: int = 1, *, heavy: bool = False, wait: bool = False) -> Any:
        """Run ``op(conn)`` in the next transaction. ``heavy``: it may run long (a rollup rebuild, a purge): on
        SQLite its statements then run on the driver's thread instead of inline on the event loop. ``wait``: wait
        for room in a full buffer instead of raising ``overloaded`` (for the platform's own writes)."""
        fut = await self._admit_when_room(rows, wait)
        self._queue.put_nowait(_Job(fut, rows, op=op, heavy=heavy))
        return await fut

    async def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]],
                          conflict: ConflictMode = "ignore", *, wait: bool = False) -> int:
        """Insert rows; returns how many were new (conflicting rows are ignored, or raise ``Conflict``).

        Every row must have the same keys (the columns to insert). ``wait``: as for :meth:`write`."""
        if not rows:
            return 0
        records = list(rows)
        keys = records[0].keys()
        if any(r.keys() != keys for r in records):
            raise ValidationFailed("every row of one insert must have the same columns", code="invalid_rows")
        unknown = [k for k in keys if k not in table.c]
        if unknown:
            raise ValidationFailed(f"unknown columns for {table.name}: {', '.join(sorted(unknown))}",
                                   code="invalid_rows")
        columns = tuple(keys)
        prepared = self.bulk.prepare(table, columns, records)
        fut = await self._admit_when_room(len(records), wait)
        self._queue.put_nowait(_Job(fut, len(records), table=table, records=prepared, columns=columns,
                                    conflict=conflict))
        return int(await fut)

    # -- the loop --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            stop = False
            while not stop:
                first = await self._queue.get()
                if first is None:
                    break
                batch, rows = [first], first.rows
                deadline = time.monotonic() + self.batch_s
                while rows < self.max_batch_rows:
                    try:
                        job = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        timeout = deadline - time.monotonic()
                        if timeout <= 0 or rows >= self.batch_rows:
                            break
                        try:
                            job = await asyncio.wait_for(self._queue.get(), timeout)
                        except TimeoutError:
                            break
                    if job is None:
                        stop = True
                        break
                    batch.append(job)
                    rows += job.rows
                await self._commit_with_retry(batch)
            # drain whatever is left (shutdown flush), in batches of about batch_rows
            rest: list[_Job] = []
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if job is not None:
                    rest.append(job)
            chunk: list[_Job] = []
            for job in rest:
                chunk.append(job)
                if sum(j.rows for j in chunk) >= self.batch_rows:
                    await self._commit_with_retry(chunk)
                    chunk = []
            if chunk:
                await self._commit_with_retry(chunk)
        finally:
            # Cancelled or crashed: nobody may wait forever on a future the loop will never settle.
            gone = Unavailable("the store writer stopped; the write was not stored", code="store_stopped",
                               retry_after=5)
            for job in self._inflight:
                self._settle(job, exc=gone)
            self._inflight = []

    async def _commit_with_retry(self, batch: list[_Job]) -> None:
        self._inflight = batch
        delay = 0.05
        while True:
            started = time.monotonic()
            try:
                results = await self._commit(batch)
            except Exception as err:
                now = time.monotonic()
                if is_connection_error(err):
                    if self._outage_since is None:
                        self._outage_since = started
                    self.available = False
                    self.stats.last_error = f"{type(err).__name__}: {str(err)[:200]}"
                    budget = 1.0 if self._closing else self.retry_s
                    if now - self._outage_since < budget:
                        self.stats.retries += 1
                        wait = min(delay, max(0.0, self._outage_since + budget - now))
                        log.warning("store unreachable (%s); retrying batch of %d jobs in %.2fs",
                                    type(err).__name__, len(batch), wait)
                        await asyncio.sleep(wait)
                        delay = min(delay * 2, 2.0)
                        continue
                self.stats.failed_batches += 1
                log.error("write batch of %d jobs failed: %s", len(batch), type(err).__name__)
                failure = err if isinstance(err, CityDataError) else Unavailable(
                    "the database is unavailable; the write was not stored", code="store_unavailable",
                    retry_after=5)
                for job in batch:
                    self._settle(job, exc=failure)
                self._inflight = []
                return
            self.available, self._outage_since = True, None
            for job, result in zip(batch, results, strict=True):
                if isinstance(result, _Failed):
                    self.stats.failed_jobs += 1
                    self._settle(job, exc=result.error)
                else:
                    self._settle(job, value=result)
            self._inflight = []
            return

    def _settle(self, job: _Job, *, value: Any = None, exc: BaseException | None = None) -> None:
        if job.rows:
            self._room.set()
        if job.future.done():
            if job.rows:
                self.stats.buffered_rows -= job.rows
                job.rows = 0
            return
        self.stats.buffered_rows -= job.rows
        job.rows = 0
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(value)

    async def _commit(self, batch: list[_Job]) -> list[Any]:
        """One transaction for the batch. First optimistically, without savepoints (a round trip each on
        PostgreSQL); when anything in it fails, the transaction is rolled back and the batch runs again with
        each job in its own savepoint, so only the failing job fails."""
        started = time.monotonic()
        try:
            results = await self._transaction(batch, safe=False)
        except Exception as err:
            if is_connection_error(err):
                raise
            results = None
        if results is None:  # outside the except block, so the jobs' own errors carry no stale context
            results = await self._transaction(batch, safe=True)
        rows = sum(j.rows for j in batch)
        self.stats.commit_seconds += time.monotonic() - started
        self.stats.commits += 1
        self.stats.jobs += len(batch)
        self.stats.rows += rows
        return results

    async def _connection(self) -> AsyncConnection:
        """The writer's own connection, kept across batches (dropped and replaced after a connection error)."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = await self.engine.connect()
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _transaction(self, batch: list[_Job], *, safe: bool) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        try:
            conn = await self._connection()
            async with conn.begin():
                if safe:
                    for i, job in enumerate(batch):
                        results[i] = await self._isolated(conn, job)
                else:
                    # Bulk jobs for the same table, columns and conflict mode go in one statement.
                    groups: dict[tuple[str, tuple[str, ...], str], list[int]] = {}
                    for i, job in enumerate(batch):
                        if job.table is not None:
                            groups.setdefault((job.table.name, job.columns, job.conflict), []).append(i)
                    for indexes in groups.values():
                        first = batch[indexes[0]]
                        assert first.table is not None
                        counts = await self.bulk.insert_parts(conn, first.table, first.columns,
                                                              [batch[i].records for i in indexes],
                                                              first.conflict)
                        for i, count in zip(indexes, counts, strict=True):
                            results[i] = count
                    for i, job in enumerate(batch):
                        if job.op is not None:
                            results[i] = await self._run_op(conn, job)
        except Exception as err:
            if is_connection_error(err):
                await self._drop_connection()
            raise
        return results

    @staticmethod
    async def _run_op(conn: AsyncConnection, job: _Job) -> Any:
        assert job.op is not None
        if not job.heavy:
            return await job.op(conn)
        driver: Any = (await conn.get_raw_connection()).driver_connection
        if not hasattr(driver, "offload"):     # only SQLite's inline connection runs statements inline
            return await job.op(conn)
        driver.offload = True
        try:
            return await job.op(conn)
        finally:
            driver.offload = False

    async def _isolated(self, conn: AsyncConnection, job: _Job) -> Any:
        """One job in its own savepoint: its failure is its own result, the transaction goes on."""
        savepoint = await conn.begin_nested()
        try:
            if job.op is not None:
                value = await self._run_op(conn, job)
            else:
                assert job.table is not None
                value = (await self.bulk.insert_parts(conn, job.table, job.columns, [job.records],
                                                      job.conflict, exact=True))[0]
        except Exception as err:
            if is_connection_error(err):
                raise
            await savepoint.rollback()
            return _Failed(self._wrap(err))
        await savepoint.commit()
        return value

    @staticmethod
    def _wrap(err: Exception) -> BaseException:
        if isinstance(err, CityDataError):
            return err
        names = [type(e).__name__ for e in _chain(err)]
        if isinstance(err, IntegrityError) or any(n.endswith(("ViolationError", "IntegrityError"))
                                                  for n in names):
            return Conflict("the write conflicts with stored data", code="integrity_conflict")
        log.warning("write operation failed: %s", type(err).__name__, exc_info=err)
        return err

    def _fail_queued(self, exc: CityDataError) -> None:
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                self._settle(job, exc=exc)
