"""A node taking a tracking partition over reads the travellers stored with that partition (and those stored
without one, or under another partition count, for ``keep`` to decide), not every active traveller; on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from citydata.tracking.schema import tracking_fence_state, tracking_travellers
from citydata.tracking.state import load_runtimes

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
ZONE = "zone:patong"


def traveller(tid: str, stamped: tuple[int, int] | None, status: str = "active") -> dict[str, Any]:
    n, k = stamped if stamped is not None else (None, None)
    return {"traveller_id": tid, "status": status, "checkpoint": "HKT", "arrived_at": T0, "screening": {},
            "screening_failed": False, "consent": {"tracking": True}, "created_at": T0,
            "bus_partitions": n, "bus_partition": k}


async def test_a_takeover_reads_its_own_partitions_rows(store: Any) -> None:
    rows = [traveller("mine", (4, 1)), traveller("theirs", (4, 2)), traveller("before", None),
            traveller("other-count", (8, 5)), traveller("gone", (4, 1), status="departed")]

    async def op(conn: Any) -> None:
        await conn.execute(tracking_travellers.insert(), rows)
        await conn.execute(tracking_fence_state.insert(), [
            {"traveller_id": tid, "fence_id": ZONE, "state": "inside", "since": T0, "updated_at": T0}
            for tid in ("mine", "theirs")])

    await store.write(op)
    everyone = await load_runtimes(store, "province:83", {ZONE}, lambda t: True, partition=(1, 4))
    # "theirs" is stored in partition 2 of 4: not read, even though keep would take anyone
    assert sorted(rt.traveller_id for rt, _ in everyone) == ["before", "mine", "other-count"]
    loaded = {rt.traveller_id: rt for rt, _ in everyone}
    assert ZONE in loaded["mine"].fences.states and ZONE not in loaded["before"].fences.states
    # the rows without this partition count are left to keep
    kept = await load_runtimes(store, "province:83", {ZONE}, lambda t: t == "mine", partition=(1, 4))
    assert [rt.traveller_id for rt, _ in kept] == ["mine"]
    # without a partition, every active traveller keep accepts (a one-node deployment, a single traveller)
    assert len(await load_runtimes(store, "province:83", {ZONE}, lambda t: True)) == 4
