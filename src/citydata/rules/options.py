"""The rules engine's options and counters, which rules an engine of a scope runs, and the durable bus log it
can replay (see :mod:`citydata.rules.engine` for the whole design)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from citydata.events import Event
from citydata.rules.model import Rule

LOCAL_GROUPS = frozenset({"datastream", "key", "traveller"})   # instances of one event key (so one partition)


@dataclass
class EngineOptions:
    name: str = "default"             # checkpoint name (one per engine)
    group: str = "rules"              # durable consumer group
    lateness_s: float = 0.0           # out-of-order tolerance (event time)
    tick_s: float = 5.0               # timer period (clock time)
    checkpoint_every: int = 5000      # events between checkpoints (also: every tick, and on every alert)
    max_instances: int = 10_000       # per rule; new instances beyond are refused and counted
    max_points: int = 10_000          # per window series; oldest dropped and counted
    max_buffer: int = 100_000         # reorder buffer; beyond, the oldest is applied early and counted
    min_checkpoint_s: float = 0.5     # real seconds between checkpoints (coalesces alerts under load)
    scope: str = "all"                # all rules; "local": per-key rules only; "global": the others
    partition: int | None = None      # consume only this bus partition (scope "local")
    fence: int | None = None          # this owner's fencing token (cluster): a newer owner's refuses our writes


def in_scope(rule: Rule, scope: str) -> bool:
    """Whether an engine of ``scope`` runs ``rule`` (see Partitions above)."""
    if scope == "all":
        return True
    local = rule.group_by in LOCAL_GROUPS
    return local if scope == "local" else not local


@dataclass
class EngineStats:
    events: int = 0
    applied: int = 0
    skipped_seen: int = 0
    late_events: int = 0
    early_released: int = 0
    dropped_instances: int = 0
    raised: int = 0
    updated: int = 0
    cleared: int = 0
    checkpoints: int = 0
    republished: int = 0


class ReplayJournal(Protocol):
    """What the engine reads of a durable bus log (``citydata.store.journal.StoreJournal``)."""

    async def read_after(self, seq: int, limit: int) -> list[tuple[int, Event]]: ...

    async def last_seq(self) -> int: ...
