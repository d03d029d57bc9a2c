"""Checkpoints and output: the engine's state, its outbox of decided alert events and its bus position are
written in one store transaction, restored on start, and the outbox is published after the commit, so a
transition is published exactly once across crashes (see :mod:`citydata.rules.engine`)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson

from citydata.bus.base import Bus
from citydata.clock import Clock
from citydata.errors import Unavailable
from citydata.events import Event
from citydata.rules.catalogue import Catalogue
from citydata.rules.evaluation import Evaluator, log
from citydata.rules.instance import Instance
from citydata.rules.options import EngineOptions, ReplayJournal
from citydata.rules.store import CheckpointWrite, RuleStore
from citydata.store.fencing import Fenced, claim

if TYPE_CHECKING:
    from citydata.geo import Geography


class CheckpointedEvaluator(Evaluator):
    """An :class:`Evaluator` whose state and decided events are checkpointed to the store and published."""

    def __init__(self, store: Any, bus: Bus, clock: Clock, *, catalogue: Catalogue, geography: Geography | None,
                 options: EngineOptions, journal: ReplayJournal | None) -> None:
        super().__init__(clock, catalogue=catalogue, geography=geography, options=options)
        self.store, self.bus = store, bus
        self.rules_store = RuleStore(store)
        self.journal = journal
        self.seq = 0
        self._published: list[str] = []
        self._since_checkpoint = 0
        self._committed = asyncio.Condition()
        self._committed_seq = 0
        self._publish_q: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._abandoned = False
        self._fenced: asyncio.Task[None] | None = None   # abandoning after a newer owner refused a checkpoint

    async def abandon(self) -> None:
        """Stop at once without writing a checkpoint (``RulesEngine``, which consumes, implements it)."""
        raise NotImplementedError

    # -- restore ---------------------------------------------------------------------------------------------
    async def _restore(self) -> None:
        if self.options.fence is not None:   # a takeover: from now on the previous owner can write nothing
            await claim(self.store, f"rules:{self.options.name}", self.options.fence)
        cp = await self.rules_store.load_checkpoint(self.options.name)
        if cp.seq is None:
            self.seq = await self.journal.last_seq() if self.journal is not None else 0
            return
        self.seq = self._committed_seq = cp.seq
        state = orjson.loads(cp.state)
        self.watermark = float(state.get("watermark") or float("-inf"))
        self.released_upto = float(state.get("released") or float("-inf"))
        for k, v in (state.get("stats") or {}).items():
            if hasattr(self.stats, k):
                setattr(self.stats, k, int(v))
        for t, seq, raw in state.get("buffer") or []:
            self._buf_n += 1
            event = Event.model_validate(raw)
            self._buffer.append((float(t), event.key, int(seq), self._buf_n, event))
        heapq.heapify(self._buffer)
        for rule_id, key, version, raw in cp.instances:
            comp = self.rules.get(rule_id)
            if comp is None or comp.rule.version != version:
                self._removed.add((rule_id, key))
                inst = Instance.from_state(key, orjson.loads(raw))
                if inst.active and comp is not None:
                    self._emit([inst.cleared(comp.rule, max(inst.seen, 0.0), "rule changed")])
                continue
            comp.instances[key] = Instance.from_state(key, orjson.loads(raw))
        if cp.outbox:
            events = [Event.model_validate_json(raw) for _, raw in cp.outbox]
            already = await self._journaled([e.id for e in events])
            todo = [e for e in events if e.id not in already]
            self.stats.republished += len(todo)
            if todo:
                await self.bus.publish_many(todo)
            await self.rules_store.drop_outbox([i for i, _ in cp.outbox])
        log.info("rules engine restored at seq %d (%d instances)", self.seq, len(cp.instances))

    async def _journaled(self, ids: list[str]) -> set[str]:
        """Which of these event ids the store's journal already holds (published before a crash)."""
        if self.journal is None:
            return set()
        from sqlalchemy import select

        from citydata.store.schema import events

        found: set[str] = set()
        for i in range(0, len(ids), 500):
            rows = await self.store.fetch_all(select(events.c.id).where(events.c.id.in_(ids[i:i + 500])))
            found |= {str(r["id"]) for r in rows}
        return found

    # -- checkpoint and output -------------------------------------------------------------------------------
    def _snapshot(self) -> tuple[CheckpointWrite, list[Event]]:
        upserts = []
        for rule_id, key in self._dirty:
            comp = self.rules.get(rule_id)
            inst = comp.instances.get(key) if comp is not None else None
            if comp is not None and inst is not None:
                upserts.append((rule_id, key, comp.rule.version, orjson.dumps(inst.to_state()).decode()))
        removals = [rk for rk in self._removed if rk not in self._dirty]
        out, self._out = self._out, []
        state = {"watermark": None if self.watermark == float("-inf") else self.watermark,
                 "released": None if self.released_upto == float("-inf") else self.released_upto,
                 "stats": asdict(self.stats),
                 "buffer": [[t, s, e.model_dump(mode="json")] for t, _, s, _, e in sorted(self._buffer)]}
        write = CheckpointWrite(self.seq, orjson.dumps(state).decode(), upserts, removals,
                                [(e.id, self.seq, e.model_dump_json()) for e in out], list(self._published),
                                self.options.fence)
        self._dirty, self._removed, self._published = set(), set(), []
        self._since_checkpoint = 0
        return write, out

    async def checkpoint(self) -> None:
        """Write a checkpoint now (state, outbox and position in one transaction), then hand the decided
        events to the publisher."""
        write, out = self._snapshot()
        try:
            await self.rules_store.save_checkpoint(self.options.name, write)
        except BaseException:
            # keep everything for the next attempt
            self._out[:0] = out
            self._published[:0] = write.published
            self._dirty |= {(r, k) for r, k, _, _ in write.upserts}
            self._removed |= set(write.removals)
            raise
        self.stats.checkpoints += 1
        if out:
            self._publish_q.put_nowait(out)
        async with self._committed:
            self._committed_seq = max(self._committed_seq, write.seq)
            self._committed.notify_all()

    async def _wait_committed(self, seq: int) -> None:
        self._wake.set()
        async with self._committed:
            await self._committed.wait_for(lambda: self._committed_seq >= seq or self._abandoned)
        if self._committed_seq < seq:   # never acknowledge what no checkpoint covers
            raise Unavailable("the rules engine gave its partition up", code="rules_abandoned")

    async def _checkpointer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not (self._dirty or self._removed or self._out or self._published
                    or self.seq > self._committed_seq):
                continue
            try:
                await self.checkpoint()
                # pace checkpoints that only save state; alerts waiting to go out are checkpointed at once
                # (the commit itself groups them), so an alert never waits for the pacing
                # (asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that arrives as the
                # event is set, so the checkpointer outlived stop()'s cancel and stop() waited for it for ever)
                if self.options.min_checkpoint_s > 0 and not self._out:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.options.min_checkpoint_s):
                            await self._alert_waiting.wait()
                    self._alert_waiting.clear()
            except asyncio.CancelledError:
                raise
            except Fenced as err:
                log.error("rules engine %s: %s; giving the partition up", self.options.name, err.message)
                self._fenced = asyncio.create_task(self.abandon(), name=f"rules-fenced-{self.options.name}")
                return
            except Exception as err:
                log.warning("rules checkpoint failed (%s); retrying", type(err).__name__)
                await asyncio.sleep(0.5)
                self._wake.set()

    async def _publisher(self) -> None:
        while True:
            events = await self._publish_q.get()
            ids = [e.id for e in events]
            try:
                while True:
                    try:
                        await self.bus.publish_many(events)
                        break
                    except Exception as err:
                        log.warning("rules could not publish %d alert events (%s); retrying", len(events),
                                    type(err).__name__)
                        await asyncio.sleep(1.0)
                        # the journal refuses an id it holds: an event another engine (or an earlier attempt)
                        # published already (ids are deterministic); only the rest is still to go
                        with contextlib.suppress(Exception):
                            already = await self._journaled([e.id for e in events])
                            events = [e for e in events if e.id not in already]
                        if not events:
                            break
                self._published.extend(ids)
            finally:
                self._publish_q.task_done()
