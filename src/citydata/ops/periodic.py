"""A job repeated every ``interval_s`` of the injectable clock, that survives its own failures.

Used by the retention rollups, the incident SLA timer and other housekeeping, so each of them is only its
job; tests drive it with a ``DrivenClock``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from citydata.clock import Clock

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, clock: Clock, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
        self.name, self.clock, self.interval_s, self.job = name, clock, interval_s, job
        self.runs = self.failures = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None and self.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self.clock.sleep(self.interval_s)
            try:
                await self.job()
                self.runs += 1
            except asyncio.CancelledError:
                raise
            except Exception:   # keep the task alive; the next period tries again
                self.failures += 1
                log.exception("%s failed; trying again at the next period", self.name)
