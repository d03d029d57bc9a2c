"""Fencing tokens (``citydata.store.fencing``): once a newer owner has claimed a partition, the old owner (a
process that was frozen past its lease and resumed) can write nothing: its checkpoint or tracking commit is
refused and rolled back, and it gives the partition up instead of retrying."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from citydata.clock import DrivenClock
from citydata.cluster.partition import partition_of
from citydata.store import schema
from citydata.store.fencing import Fenced, check_fence, claim, fence_key
from tests.cluster.test_leases import until
from tests.conftest import make_settings
from tests.tracking.conftest import OLD_TOWN, START, arrive_and_enrol, ping
from tests.tracking.test_partitioned import names  # noqa: F401  (fixture: a stream and bucket per test)

PARTITIONS = 4


@pytest.mark.parametrize("backend_settings", ["sqlite", "postgresql"], indirect=True)
async def test_a_lower_token_is_refused_and_its_transaction_rolled_back(backend_platform: Any) -> None:
    store = backend_platform.store
    await claim(store, "rules:p3", 5)
    assert await store.get_meta(fence_key("rules:p3")) == 5
    await claim(store, "rules:p3", 5)                      # the owner again: fine
    with pytest.raises(Fenced) as refused:
        await claim(store, "rules:p3", 4)
    assert refused.value.code == "fenced" and refused.value.status == 503

    async def stale_commit(conn: Any) -> None:
        await conn.execute(insert(schema.meta).values(key="stale-state", value=1, updated_at=store.clock.now()))
        await check_fence(conn, store.clock, "rules:p3", 4)

    with pytest.raises(Fenced):
        await store.write(stale_commit)
    assert await store.get_meta("stale-state") is None     # nothing of the refused transaction was kept
    await claim(store, "rules:p3", 6)                      # a newer takeover
    assert await store.get_meta(fence_key("rules:p3")) == 6


async def test_a_stale_owner_is_fenced_out_of_rules_and_tracking(tmp_path: Path, nats_url: str,
                                                                 names: dict[str, str]) -> None:  # noqa: F811
    from citydata.api.routes import tracking as routes
    from citydata.app import Platform

    clock = DrivenClock(START + timedelta(minutes=5))
    settings = make_settings(tmp_path, mqtt_url="none://", bus_url=nats_url, bus_stream=names["stream"],
                             bus_subject_prefix=names["prefix"], bus_partitions=PARTITIONS, cluster_lease_s=3.0,
                             tracking_dwell_s=0, tracking_overdue_check_s=3600.0, vision_enabled=False,
                             wifi_enabled=False)
    # bounded: one full-suite run hung somewhere in here (not reproduced in 9 runs alone or after the modules
    # before it); a recurrence fails with the stack of the await instead of stalling the suite
    async with asyncio.timeout(150):
        async with Platform(settings, clock=clock) as p:
            node = p.cluster
            assert node is not None and p.tracking is not None and p.app is not None
            p.app.include_router(routes.router)
            membership = node.membership
            await until(lambda: len(node.engines) == PARTITIONS)
            # every term carries a token, and the token embeds the bucket's epoch
            assert set(membership.terms) == set(range(PARTITIONS)) and membership.epoch > 0
            assert all(t >> 32 == membership.epoch for t in membership.terms.values())

            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app),
                                         base_url="http://citydata.test") as client:
                tid, token = await arrive_and_enrol(p, client)
                k = partition_of(tid, PARTITIONS)
                await until(lambda: k in node.tracking and tid in node.tracking[k].travellers)
                part, engine = node.tracking[k], node.engines[k]
                assert part.fence == engine.options.fence == membership.terms[k]
                position = await p.store.get_meta(part.meta_key)

                # a newer owner takes partition k over (as after this node froze past its lease) ...
                await claim(p.store, part.meta_key, part.fence + 1)
                await claim(p.store, f"rules:{engine.options.name}", engine.options.fence + 1)

                # ... so the tracking commit of the next ping is refused and the partition is given up
                r = await client.post("/api/v1/tracking/pings", json=ping(START + timedelta(minutes=6), *OLD_TOWN),
                                      headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 202, r.text            # (the ping itself is committed by the receiving node)
                await until(lambda: part._stopped and part._consumer is None)
                assert await p.store.get_meta(part.meta_key) == position
                assert part.committed < part.applied            # applied in memory, never committed

                # the rules engine's checkpoint is refused too, and its checkpointer gives the partition up
                with pytest.raises(Fenced):
                    await engine.checkpoint()
                engine.seq += 1                                 # (something to checkpoint)
                engine._wake.set()
                await until(lambda: engine._abandoned)
                await engine.stop()                            # after a refusal, stop writes nothing and raises nothing
                assert await p.store.get_meta(fence_key(f"rules:{engine.options.name}")) == engine.options.fence + 1
        # (leaving the block stopped the node: its release of the given-up partition wrote nothing and raised nothing)
