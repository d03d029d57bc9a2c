"""Datastreams created after the rules engine started are read in one go on the first miss, not one by one.

Under the issue 8 load (300 Datastreams registered after start, SQLite busy with every feed) each one-by-one
lookup took 0.2-1.5 s on the rules consumer's path: the consumer, which applies every bus event in order,
stalled behind them until every Datastream was cached, its queue reached its bound (10,000) and every
publisher waited (bench/load.py: the ``consumer:rules#0`` depth climbs for 30-70 s, then drops to 0 at once)."""

from __future__ import annotations

from pathlib import Path

from citydata.clock import DrivenClock
from citydata.rules.catalogue import Catalogue
from citydata.store import create_store
from tests.conftest import make_settings
from tests.rules.helpers import geography
from tests.rules.setup_streams import DEVICES, create_streams


async def test_a_miss_reads_every_newer_datastream_at_once(tmp_path: Path) -> None:
    store = create_store(make_settings(tmp_path), DrivenClock())
    await store.start()
    try:
        cat = Catalogue(store, geography())
        assert await cat.load_all() == 0          # the engine started before any Datastream existed
        await create_streams(store)               # then a deployment registers its sensors
        info = await cat.lookup(2)                # the first observation of one of them
        assert info is not None and info.device_id == "level-01" and info.observed_property
        # the others are cached too: their first observations do not wait for the store
        for sid, device, *_ in DEVICES:
            cached = cat.cached(sid)
            assert cached is not None and cached.device_id == device
        one = cat.cached(1)
        assert one is not None and one.lon is not None and one.zone_id is not None   # location and zone
        assert await cat.lookup(99) is None       # an unknown id is still a miss
        assert cat.cached(99) is None
    finally:
        await store.stop()
