"""The tourist feed: realistic proportions and movement (model), and the full HTTP flow against a platform."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from citydata.clock import DrivenClock
from citydata.geo import Geography, read_reference_city
from citydata.sim.tourists import REPORT_S, TouristFeed, TouristModel, platform_settings
from tests.conftest import bearer, make_settings, token_for

SPEED = 30


@pytest.fixture
async def fast(tmp_path: Path, dclock: DrivenClock) -> AsyncIterator[Any]:
    """A platform whose tracking timers match a feed running 30 times faster than real time."""
    from citydata.api.routes import tracking as routes
    from citydata.app import Platform
    from citydata.tracking import start_tracking

    p = Platform(make_settings(tmp_path, mqtt_url="none://", **platform_settings(SPEED)), clock=dclock)
    async with p:
        service = await start_tracking(p)
        assert p.app is not None
        p.app.include_router(routes.router)
        try:
            yield p
        finally:
            await service.stop()


def test_most_arrive_by_air_and_stay_at_real_places() -> None:
    model = TouristModel(3)
    tourists = [model.new_tourist(0.0) for _ in range(3000)]
    share = Counter(t.checkpoint for t in tourists)
    assert share["HKT"] / 3000 > 0.8 and set(share) == {"HKT", "THA_CHATCHAI", "RASSADA", "AO_CHALONG", "AO_PO"}
    geo = Geography(read_reference_city("phuket"))
    for t in tourists[:200]:
        lon, lat = t.position(t.arrives + 86400)             # a day later: somewhere in Phuket
        place = geo.province_at(lon, lat) or geo.nearest_province(lon, lat, 2000)
        assert place is not None
    leaving = next(t for t in tourists if t.fate == "sarasin")
    lon, lat = leaving.position(leaving.departs - 1)
    assert geo.province_at(lon, lat) is not None and geo.province_at(lon, lat).name_en == "Phang Nga"
    speeds = [leg for t in tourists[:50] for leg in t.legs if leg.t1 > leg.t0]
    assert speeds and all(leg.t1 - leg.t0 >= 60 for leg in speeds)


async def test_feed_over_http(fast: Any, dclock: Any) -> None:
    feed = TouristFeed(5, per_hour=6, speed=SPEED, stay_days=(0.2, 0.3), wall_now=dclock.now)
    transport = httpx.ASGITransport(app=fast.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test",
                                 headers=bearer(await token_for(fast, "admin"))) as http:
        await feed.setup(http)                       # creates its immigration token with the admin token
        sim_t = 0.0
        while sim_t < 10 * 3600:
            sim_t += REPORT_S / 2
            dclock.advance(REPORT_S / 2 / SPEED)
            await feed.step(http, sim_t)
    st = feed.stats
    assert st.arrivals >= 20 and st.enrolled == st.arrivals
    assert st.pings_accepted > st.arrivals and st.errors == 0, st
    assert st.departures > 0
    assert fast.tracking.views.positions(limit=1)["total"] == st.arrivals - st.departures - st.left
