"""Fencing tokens: the state of a partition is written only by its newest owner.

A cluster node owns a partition (its rules engine, its tourist tracking) while it holds the partition's lease in
NATS. Leases end by expiry, so a process frozen for longer than the lease (SIGSTOP, a VM pause, a swap storm)
can resume still believing it owns the partition, and write its state once more over the new owner's before
its renewal notices the loss. Each ownership term therefore carries a token that grows with every takeover
(``citydata.cluster.leases.fencing_token``), and every write of a partition's state checks it in the same
transaction: the token stored under ``fence:<name>`` in the ``meta`` table is raised to the writer's, and a
writer whose token is lower than the stored one is refused with :class:`Fenced` and rolls back. The new owner
stores its token when it takes over (``claim``), before it reads the state, so from then on the old owner can
write nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import Clock
from citydata.errors import Unavailable
from citydata.store import schema
from citydata.store.engine import Store


class Fenced(Unavailable):
    code, title = "fenced", "Partition owned by a newer node"


def fence_key(name: str) -> str:
    return f"fence:{name}"


async def check_fence(conn: AsyncConnection, clock: Clock, name: str, token: int) -> None:
    """Inside a write transaction: refuse it (:class:`Fenced`) when a newer owner's token is stored under
    ``name``, else store ``token``. On PostgreSQL the row is locked until the commit, so two writers are
    ordered; SQLite has one writer at a time."""
    m = schema.meta
    query = select(m.c.value).where(m.c.key == fence_key(name))
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update()
    stored = (await conn.execute(query)).scalar()
    if stored is not None and int(stored) > token:
        raise Fenced(f"{name} is owned by a newer node (token {stored} > {token}); this write is refused",
                     token=token, stored=int(stored))
    if stored is None or int(stored) != token:
        now = clock.now()
        ins = (pg_insert if postgres else sqlite_insert)(m)
        await conn.execute(ins.values(key=fence_key(name), value=token, updated_at=now).on_conflict_do_update(
            index_elements=[m.c.key], set_={"value": ins.excluded.value, "updated_at": now}))


async def claim(store: Store, name: str, token: int) -> None:
    """Store ``token`` as the owner's of ``name`` (a takeover), or raise :class:`Fenced` if a newer one is."""
    async def op(conn: AsyncConnection) -> None:
        await check_fence(conn, store.clock, name, token)

    await store.write(op, wait=True)
