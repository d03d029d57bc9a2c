"""A started platform on SQLite and on PostgreSQL without the WiFi and vision services (the tests write the
WiFi rollups themselves), and its HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from citydata.config import Settings


@pytest.fixture
async def aplatform(backend_settings: Settings) -> AsyncIterator[Any]:
    from citydata.app import Platform

    p = Platform(backend_settings.model_copy(update={"mqtt_url": "none://", "wifi_enabled": False,
                                                     "vision_enabled": False}))
    async with p:
        yield p


@pytest.fixture
async def aclient(aplatform: Any) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=aplatform.app), base_url="http://t") as c:
        yield c
