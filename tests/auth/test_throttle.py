"""Failure throttling under the driven clock."""

from __future__ import annotations

import pytest

from citydata.auth import FailureThrottle
from citydata.clock import DrivenClock
from citydata.errors import TooManyRequests


def test_opens_after_n_failures_and_closes_after_the_window(clock: DrivenClock) -> None:
    t = FailureThrottle(clock, max_failures=3, window_s=60)
    for _ in range(2):
        t.check("10.0.0.1")
        t.failed("10.0.0.1")
        clock.advance(5)
    t.check("10.0.0.1")
    t.failed("10.0.0.1")               # third failure at t=10
    with pytest.raises(TooManyRequests) as info:
        t.check("10.0.0.1")
    assert info.value.code == "too_many_failures" and info.value.status == 429
    assert info.value.extra["retry_after"] == 50   # the first failure (t=0) leaves the window at t=60
    t.check("10.0.0.2")                # other keys are not affected
    clock.advance(49)
    with pytest.raises(TooManyRequests) as info:
        t.check("10.0.0.1")
    assert info.value.extra["retry_after"] == 1
    clock.advance(1)                   # t=60: the first failure has aged out, two remain
    t.check("10.0.0.1")
    assert t.failures("10.0.0.1") == 2
    t.failed("10.0.0.1")
    with pytest.raises(TooManyRequests):
        t.check("10.0.0.1")
    clock.advance(61)
    t.check("10.0.0.1")
    assert t.failures("10.0.0.1") == 0
    assert len(t) == 0


def test_success_forgets_the_key(clock: DrivenClock) -> None:
    t = FailureThrottle(clock, max_failures=2)
    t.failed("alice")
    t.succeeded("alice")
    t.failed("alice")
    t.check("alice")
    t.failed("alice")
    with pytest.raises(TooManyRequests):
        t.check("alice")


def test_memory_is_bounded(clock: DrivenClock) -> None:
    t = FailureThrottle(clock, max_failures=1, max_keys=100)
    for i in range(1000):
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t) == 100
    with pytest.raises(TooManyRequests):
        t.check("10.0.3.231")          # the most recent keys are kept
    t.check("10.0.0.0")                # the oldest were forgotten


def test_rejects_nonsense_configuration(clock: DrivenClock) -> None:
    with pytest.raises(ValueError):
        FailureThrottle(clock, max_failures=0)
