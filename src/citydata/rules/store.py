"""Persistence of the rules (current documents and every version) and of the engine's checkpoint.

Rules: ``save`` assigns the next version when the document changed (an identical save is a no-op), keeps
every version in ``rule_versions``; ``delete`` records a ``deleted`` version. Checkpoint: ``save_checkpoint``
writes, in one writer transaction, the changed instances, the removed ones, the new outbox events, the
removal of published ones, and the engine row with the bus ``seq`` it covers, so state, decided alerts and
position always agree after a crash.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.errors import NotFound
from citydata.rules import schema as t
from citydata.store.fencing import check_fence

if TYPE_CHECKING:
    from citydata.store import Store


@dataclass
class Checkpoint:
    seq: int | None = None
    state: str = "{}"
    instances: list[tuple[str, str, int, str]] = field(default_factory=list)   # rule, instance, version, json
    outbox: list[tuple[str, str]] = field(default_factory=list)                 # id, event json


@dataclass
class CheckpointWrite:
    seq: int
    state: str
    upserts: list[tuple[str, str, int, str]]
    removals: list[tuple[str, str]]
    outbox: list[tuple[str, int, str]]          # id, seq, event json
    published: list[str]
    fence: int | None = None                    # the owner's fencing token (citydata.store.fencing)


class RuleStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.store.dialect == "postgresql" else sqlite_insert)(table)

    # -- rules -----------------------------------------------------------------------------------------------
    async def list(self, *, enabled_only: bool = False) -> builtins.list[dict[str, Any]]:
        stmt = select(t.rules).order_by(t.rules.c.id)
        if enabled_only:
            stmt = stmt.where(t.rules.c.enabled.is_(True))
        return [dict(r) for r in await self.store.fetch_all(stmt)]

    async def get(self, rule_id: str) -> dict[str, Any]:
        row = await self.store.fetch_one(select(t.rules).where(t.rules.c.id == rule_id))
        if row is None:
            raise NotFound(f"rule {rule_id!r} does not exist", code="rule_not_found")
        return dict(row)

    async def exists(self, rule_id: str) -> bool:
        return await self.store.scalar(select(t.rules.c.id).where(t.rules.c.id == rule_id)) is not None

    async def save(self, doc: dict[str, Any], *, by: str | None, origin: str | None,
                   only_if_new: bool = False) -> tuple[dict[str, Any], str]:
        """Create or update; returns (row, outcome) with outcome ``created``, ``updated`` or ``unchanged``."""
        now = self.store.clock.now()
        rule_id = str(doc["id"])
        enabled = bool(doc.get("enabled", True))

        async def op(conn: AsyncConnection) -> str:
            current = (await conn.execute(select(t.rules).where(t.rules.c.id == rule_id))).mappings().first()
            if current is not None and (only_if_new or current["doc"] == doc):
                return "unchanged"
            last = (await conn.execute(select(func.max(t.rule_versions.c.version))
                                       .where(t.rule_versions.c.rule_id == rule_id))).scalar()
            version = int(last or 0) + 1
            values = {"name": str(doc["name"]), "enabled": enabled, "version": version, "doc": doc,
                      "updated_at": now, "updated_by": by}
            if current is None:
                await conn.execute(t.rules.insert().values(id=rule_id, created_at=now, origin=origin, **values))
            else:
                await conn.execute(t.rules.update().where(t.rules.c.id == rule_id).values(**values))
            await conn.execute(t.rule_versions.insert().values(
                rule_id=rule_id, version=version, op="created" if current is None else "updated", doc=doc,
                at=now, by=by))
            return "created" if current is None else "updated"

        outcome: str = await self.store.write(op)
        return await self.get(rule_id), outcome

    async def delete(self, rule_id: str, *, by: str | None) -> int:
        now = self.store.clock.now()

        async def op(conn: AsyncConnection) -> int:
            current = (await conn.execute(select(t.rules.c.version).where(t.rules.c.id == rule_id))).scalar()
            if current is None:
                return 0
            last = (await conn.execute(select(func.max(t.rule_versions.c.version))
                                       .where(t.rule_versions.c.rule_id == rule_id))).scalar()
            version = int(last or current) + 1
            await conn.execute(t.rules.delete().where(t.rules.c.id == rule_id))
            await conn.execute(t.rule_versions.insert().values(rule_id=rule_id, version=version, op="deleted",
                                                               doc=None, at=now, by=by))
            return version

        version: int = await self.store.write(op)
        if not version:
            raise NotFound(f"rule {rule_id!r} does not exist", code="rule_not_found")
        return version

    async def versions(self, rule_id: str) -> builtins.list[dict[str, Any]]:
        v = t.rule_versions
        rows = await self.store.fetch_all(select(v).where(v.c.rule_id == rule_id).order_by(v.c.version))
        if not rows:
            raise NotFound(f"rule {rule_id!r} has no versions", code="rule_not_found")
        return [dict(r) for r in rows]

    # -- checkpoint ------------------------------------------------------------------------------------------
    async def load_checkpoint(self, engine: str) -> Checkpoint:
        cp = Checkpoint()
        row = await self.store.fetch_one(select(t.rule_engine).where(t.rule_engine.c.name == engine))
        if row is not None:
            cp.seq, cp.state = int(row["seq"]), str(row["state"])
        ri = t.rule_instances
        for r in await self.store.fetch_all(select(ri).where(ri.c.engine == engine)):
            cp.instances.append((str(r["rule_id"]), str(r["instance"]), int(r["rule_version"]), str(r["state"])))
        ob = t.rule_outbox
        for r in await self.store.fetch_all(select(ob).where(ob.c.engine == engine).order_by(ob.c.seq, ob.c.id)):
            cp.outbox.append((str(r["id"]), str(r["event"])))
        return cp

    async def save_checkpoint(self, engine: str, w: CheckpointWrite) -> None:
        now = self.store.clock.now()
        ri, ob, eng = t.rule_instances, t.rule_outbox, t.rule_engine

        async def op(conn: AsyncConnection) -> None:
            if w.fence is not None:     # refused (Fenced, rolled back) once a newer owner took the partition
                await check_fence(conn, self.store.clock, f"rules:{engine}", w.fence)
            if w.upserts:
                ins = self._insert(ri)
                stmt = ins.on_conflict_do_update(
                    index_elements=[ri.c.engine, ri.c.rule_id, ri.c.instance],
                    set_={"rule_version": ins.excluded.rule_version, "state": ins.excluded.state,
                          "updated_at": ins.excluded.updated_at})
                await conn.execute(stmt, [{"engine": engine, "rule_id": r, "instance": i, "rule_version": v,
                                           "state": s, "updated_at": now} for r, i, v, s in w.upserts])
            for chunk in _chunks(w.removals, 200):
                await conn.execute(delete(ri).where(ri.c.engine == engine,
                                                    tuple_(ri.c.rule_id, ri.c.instance).in_(chunk)))
            if w.outbox:
                # alert event ids are deterministic: an engine deciding a transition that another one (the
                # partition's previous owner) has in the outbox still, adds nothing; both copies are one event
                await conn.execute(self._insert(ob).on_conflict_do_nothing(index_elements=[ob.c.id]),
                                   [{"id": i, "engine": engine, "seq": s, "event": e, "created_at": now}
                                    for i, s, e in w.outbox])
            for ids in _chunks(w.published, 500):
                await conn.execute(delete(ob).where(ob.c.id.in_(ids)))
            ins = self._insert(eng)
            await conn.execute(ins.values(name=engine, seq=w.seq, state=w.state, updated_at=now)
                               .on_conflict_do_update(index_elements=[eng.c.name],
                                                      set_={"seq": w.seq, "state": w.state, "updated_at": now}))

        await self.store.write(op, rows=max(1, len(w.upserts) + len(w.outbox)))

    async def drop_outbox(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids), 500):
            await self.store.execute(delete(t.rule_outbox).where(t.rule_outbox.c.id.in_(chunk)))


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
