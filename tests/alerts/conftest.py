from typing import Any

import pytest

from citydata.clock import DrivenClock
from tests.incidents.support import ioc_client, ioc_platform, receiver, start_platform, stop_platform

__all__ = ["backend_ioc", "ioc_client", "ioc_platform", "receiver"]


@pytest.fixture
async def backend_ioc(backend_settings: Any, clock: DrivenClock) -> Any:
    """A platform with the IOC on SQLite and on PostgreSQL, MQTT off."""
    p, ours = await start_platform(backend_settings.model_copy(update={"mqtt_url": "none://"}), clock)
    try:
        yield p
    finally:
        await stop_platform(p, ours)
