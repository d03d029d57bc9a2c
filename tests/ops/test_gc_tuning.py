"""The collector's tuning for ``citydata serve``: the young threshold from the settings, and the objects alive
after start moved out of the generations (still freed by reference counting when dropped)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from citydata.config import load_settings
from citydata.ops.gc_tuning import freeze_startup_objects, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_young_threshold_comes_from_the_settings_and_zero_keeps_pythons(restored_gc: None) -> None:
    settings = load_settings(environ={"CITYDATA_GC_YOUNG_THRESHOLD": "12345"})
    before = gc.get_threshold()
    assert tune_gc(settings.gc_young_threshold) == before
    assert gc.get_threshold() == (12345, before[1], before[2])
    tune_gc(0)
    assert gc.get_threshold() == (12345, before[1], before[2])
    assert load_settings(environ={}).gc_young_threshold == 10_000


class Node:
    def __init__(self) -> None:
        self.me = self        # a cycle: only the collector frees it


def test_frozen_objects_are_left_alone_and_later_cycles_are_still_collected(restored_gc: None) -> None:
    startup = Node()
    ref = weakref.ref(startup)
    assert freeze_startup_objects() > 1000
    del startup
    gc.collect()
    assert ref() is not None                  # frozen: no collection walks it
    later = Node()
    later_ref = weakref.ref(later)
    del later
    gc.collect()
    assert later_ref() is None                # made after the freeze: collected as usual
    gc.unfreeze()
    gc.collect()
    assert ref() is None
