"""Choose the bus from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from citydata.bus.base import Bus
from citydata.bus.memory import BusJournal, MemoryBus

if TYPE_CHECKING:
    from citydata.config import Settings


def create_bus(settings: Settings, journal: BusJournal | None = None) -> Bus:
    """``memory://`` gives the in-process bus (journaled in the store when one is given);
    ``nats://`` gives the JetStream bus."""
    if settings.bus_url.startswith("memory://"):
        return MemoryBus(queue_size=settings.bus_queue_size, journal=journal)
    from citydata.bus.nats import NatsBus  # imported only when chosen

    return NatsBus(settings.bus_url, stream=settings.bus_stream, prefix=settings.bus_subject_prefix,
                   queue_size=settings.bus_queue_size, partitions=settings.bus_partitions,
                   ack_wait=settings.bus_ack_wait_s)
