"""What each ``--role`` runs (in-process nodes on the machine's NATS, a stream per test, and PostgreSQL)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from citydata.app import Platform
from citydata.errors import ValidationFailed
from tests.conftest import free_port, make_settings


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[dict[str, Any]]:
    token = uuid.uuid4().hex[:8]
    yield {"bus_url": nats_url, "bus_stream": f"T_{token}", "bus_subject_prefix": f"t{token}",
           "bus_partitions": 4, "cluster_lease_s": 10.0}
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for name in (f"T_{token}", f"KV_T_{token}_cluster"):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


async def test_roles_split_the_work(tmp_path: Path, stream: dict[str, Any], pg_url: str, pg_schema: str) -> None:
    base = {**stream, "db_url": pg_url, "db_schema": pg_schema}
    rules_node = Platform(make_settings(tmp_path / "r", node_role="rules", node_id="r1", mqtt_url="none://",
                                        **base))
    api_node = Platform(make_settings(tmp_path / "a", node_role="api", node_id="a1",
                                      mqtt_url=f"embedded://127.0.0.1:{free_port()}", **base))
    ingest_node = Platform(make_settings(tmp_path / "i", node_role="ingest", node_id="i1",
                                         mqtt_url=f"embedded://127.0.0.1:{free_port()}", **base))
    async with rules_node, api_node, ingest_node:
        assert rules_node.cluster is not None and api_node.cluster is not None
        # the rules node holds every partition (rules engine and tracking) and leads: global engine, IOC consumers
        assert sorted(rules_node.cluster.engines) == [0, 1, 2, 3] and rules_node.cluster.membership.is_leader
        assert sorted(rules_node.cluster.tracking) == [0, 1, 2, 3]
        assert rules_node.cluster.global_engine is not None and rules_node.tracking is not None
        assert rules_node.bridge is None                       # no MQTT on a rules node
        # api: HTTP only (tracking routes included, from the store), no consumers, no MQTT
        assert not api_node.cluster.worker and api_node.cluster.engines == {} and api_node.cluster.tracking == {}
        assert api_node.bridge is None and api_node.broker is None
        assert api_node.tracking is not None and api_node.tracking.shared and not api_node.tracking.travellers
        assert api_node.ioc is not None and "alerts" not in api_node.ioc._started
        # ingest: the MQTT bridge, no rules
        assert ingest_node.bridge is not None and ingest_node.cluster is not None
        assert ingest_node.cluster.engines == {} and not ingest_node.cluster.membership.is_leader
        assert sorted(await rules_node.cluster.membership._live_nodes()) == ["a1", "i1", "r1"]

        assert api_node.app is not None
        transport = httpx.ASGITransport(app=api_node.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            ready = (await client.get("/readyz")).json()
            assert ready["checks"]["cluster"]["ok"] and "role api" in ready["checks"]["cluster"]["detail"]


async def test_roles_other_than_all_need_nats(tmp_path: Path) -> None:
    node = Platform(make_settings(tmp_path, node_role="api", mqtt_url="none://"))
    with pytest.raises(ValidationFailed, match="needs the shared NATS bus"):
        async with node:
            pass


async def test_roles_on_an_unpartitioned_nats_bus(tmp_path: Path, stream: dict[str, Any]) -> None:
    """``CITYDATA_BUS_PARTITIONS=0``: no cluster; a rules node runs the engine and the consumers itself, an api
    node runs none of them."""
    base = {**stream, "bus_partitions": 0, "mqtt_url": "none://"}
    async with Platform(make_settings(tmp_path / "r", node_role="rules", **base)) as rules_node, \
            Platform(make_settings(tmp_path / "a", node_role="api", **base)) as api_node:
        assert rules_node.cluster is None and api_node.cluster is None
        assert rules_node.rules is not None and rules_node.rules.engine is not None
        assert rules_node.tracking is not None and rules_node.ioc is not None
        assert "alerts" in rules_node.ioc._started
        assert api_node.rules is not None and api_node.rules.engine is None and api_node.tracking is None
        assert api_node.ioc is not None and "alerts" not in api_node.ioc._started
