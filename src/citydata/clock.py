"""Injectable clocks: the real one, and a driven one for tests of rules, timers and retention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the platform asks of time. Every service takes one instead of calling ``datetime.now``."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class DrivenClock:
    """A clock that only moves when a test says so. ``sleep`` wakes when ``advance`` passes its deadline."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("DrivenClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._origin = self._now
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._origin).total_seconds()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), fut))
        await fut

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards) and wake every sleeper whose deadline passed."""
        if when < self._now:
            raise ValueError("a clock never goes backwards")
        self._now = when
        due = [(t, f) for t, f in self._sleepers if t <= when]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > when]
        for _, fut in sorted(due, key=lambda item: item[0]):
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by ``seconds`` plus any ``timedelta`` keywords (minutes=, hours=, days=)."""
        self.set(self._now + timedelta(seconds=seconds, **delta))
        return self._now
