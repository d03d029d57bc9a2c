"""Shared fixtures.

Tests that need a real service (PostgreSQL, NATS, Mosquitto) use the ``pg_url``, ``nats_url`` and ``mqtt_url``
fixtures. When the service is missing they skip, unless ``CITYDATA_REQUIRE_SERVICES=1`` (as in CI), where they
fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from citydata.clock import DrivenClock
from citydata.config import Settings, load_settings

REQUIRE = os.environ.get("CITYDATA_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("CITYDATA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("CITYDATA_TEST_NATS_URL", "nats://127.0.0.1:4222")
MQTT_URL = os.environ.get("CITYDATA_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO / "tests" / "fixtures" / "data"   # copies of ../shared/data (attribution inside)


def _reachable(url: str) -> bool:
    hostport = url.split("://", 1)[1].split("/", 1)[0].split("@")[-1]
    host, _, port = hostport.partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, url: str) -> None:
    if not _reachable(url):
        message = f"{name} is not reachable at {url}"
        if REQUIRE:
            pytest.fail(message + " (CITYDATA_REQUIRE_SERVICES=1)")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clock() -> DrivenClock:
    return DrivenClock()


@pytest.fixture
def pg_url() -> str:
    need_service("PostgreSQL", PG_URL)
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    import asyncio

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture
def nats_url() -> str:
    need_service("NATS", NATS_URL)
    return NATS_URL


@pytest.fixture
def mqtt_url() -> str:
    need_service("Mosquitto", MQTT_URL)
    return MQTT_URL


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: a private data dir, no env leakage, embedded defaults."""
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "log_format": "text"}
    values.update(overrides)
    return load_settings(environ={}, **values)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the same test on SQLite and on PostgreSQL (fresh schema)."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    pg = request.getfixturevalue("pg_url")
    schema = request.getfixturevalue("pg_schema")
    return make_settings(tmp_path, db_url=pg, db_schema=schema)


@pytest.fixture
async def store(backend_settings: Settings, clock: DrivenClock) -> AsyncIterator[Any]:
    from citydata.store import create_store

    st = create_store(backend_settings, clock)
    await st.start()
    try:
        yield st
    finally:
        await st.stop()


# -- a started platform, in process ----------------------------------------------------------------------------

@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Any]:
    """A started platform on a temporary SQLite file, without MQTT (fast API tests)."""
    from citydata.app import Platform

    p = Platform(make_settings(tmp_path, mqtt_url="none://"))
    async with p:
        yield p


@pytest.fixture
async def client(platform: Any) -> AsyncIterator[Any]:
    """An HTTP client of the platform in process, through what the server serves (the hot routes' front)."""
    import httpx

    from citydata.api.app import serving_app

    transport = httpx.ASGITransport(app=serving_app(platform.app))
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test") as c:
        yield c


async def token_for(platform: Any, role: str, **kwargs: Any) -> str:
    from citydata.auth import Role

    _, token = await platform.tokens.create(Role(role), f"test {role}", **kwargs)
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def backend_platform(backend_settings: Settings) -> AsyncIterator[Any]:
    """A started platform (no MQTT) on SQLite and again on PostgreSQL."""
    from citydata.app import Platform

    p = Platform(backend_settings.model_copy(update={"mqtt_url": "none://"}))
    async with p:
        yield p
