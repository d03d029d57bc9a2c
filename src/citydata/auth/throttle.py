"""Throttling of failed authentication attempts, per client key (an IP address, a username, a token id).

A sliding window: a key that has had ``max_failures`` failures within the last ``window_s`` seconds is refused
(``TooManyRequests``, with ``retry_after`` the seconds until the oldest of those failures leaves the window).
A success forgets the key. Memory is bounded: beyond ``max_keys`` keys the least recently failed is forgotten.
Time is the injected clock's ``monotonic``.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from citydata.clock import Clock
from citydata.errors import TooManyRequests


class FailureThrottle:
    def __init__(self, clock: Clock, max_failures: int, window_s: float = 60.0,
                 max_keys: int = 100_000) -> None:
        if max_failures < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("max_failures, window_s and max_keys must be positive")
        self.clock = clock
        self.max_failures, self.window_s, self.max_keys = max_failures, window_s, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def check(self, key: str) -> None:
        """Raise ``TooManyRequests(code="too_many_failures")`` while ``key`` is throttled."""
        now = self.clock.monotonic()
        times = self._recent(key, now)
        if times is not None and len(times) >= self.max_failures:
            retry_after = max(1, math.ceil(times[0] + self.window_s - now))
            raise TooManyRequests("too many failed attempts; try again later", code="too_many_failures",
                                  retry_after=retry_after)

    def failed(self, key: str) -> None:
        """Count one failure for ``key``."""
        now = self.clock.monotonic()
        times = self._recent(key, now)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.max_failures)
        times.append(now)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        """Failures of ``key`` within the window."""
        times = self._recent(key, self.clock.monotonic())
        return 0 if times is None else len(times)

    def __len__(self) -> int:
        return len(self._failures)
