"""Fixtures for the web pages: a platform on a temporary SQLite file (tests/conftest.py) with settings of the
test's choosing, and a private copy of the built bundle a test may break."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from citydata.web.bundle import BUILT, WebBundle
from tests.conftest import make_settings

Client = httpx.AsyncClient


@pytest.fixture
async def client_with(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[Any, Client]]]]:
    """``platform, client = await client_with(read_public=False, ...)``: a started platform (no MQTT) with
    these settings and a client for it; both are stopped after the test."""
    from citydata.app import Platform

    async with AsyncExitStack() as stack:
        async def make(**overrides: Any) -> tuple[Any, Client]:
            settings = overrides.pop("settings", None) or make_settings(tmp_path, mqtt_url="none://", **overrides)
            platform = await stack.enter_async_context(Platform(settings))
            assert platform.app is not None
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=platform.app), base_url="http://citydata.test"))
            return platform, client

        yield make


@pytest.fixture
def bundle_copy(tmp_path: Path) -> WebBundle:
    """A copy of the committed bundle in a temporary folder (the test may delete files from it)."""
    assert (BUILT / "ioc" / "index.html").is_file(), "the committed web bundle is missing (run `make web`)"
    root = tmp_path / "static"
    shutil.copytree(BUILT, root)
    return WebBundle(root)
