"""``POST /v1.1/...`` (a sensor's Observation, any SensorThings create) is served ahead of FastAPI
(``citydata.api.hot_routes``, prefix route): the answers must be the same as the routed FastAPI route's, and the
other POST routes under ``/v1.1/`` (``CreateObservations``, ``$batch``) must still go through FastAPI."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from citydata.api.app import create_app, serving_app
from citydata.api.hot_routes import HotRoutes
from tests.conftest import bearer, token_for
from tests.sensorthings.test_ingest import _stream

T = "2026-11-21T03:00:00Z"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citydata.test")


def _shape(r: httpx.Response) -> tuple[Any, ...]:
    """What a client sees, with the new entity's id left out (each path creates its own)."""
    body = orjson.loads(re.sub(r"\(\d+\)", "(N)", r.text)) if r.content else None
    if isinstance(body, dict):
        body.pop("@iot.id", None)
    location = r.headers.get("location")
    return (r.status_code, r.headers["content-type"], r.headers.get("www-authenticate"),
            re.sub(r"\(\d+\)", "(N)", location) if location else None, body)


async def test_hot_and_routed_sensorthings_posts_answer_alike(platform: Any) -> None:
    hot, routed = serving_app(create_app(platform)), create_app(platform, hot_routes=False)
    assert isinstance(hot, HotRoutes)
    ds = await _stream(platform)
    device, public = await token_for(platform, "device"), await token_for(platform, "public")
    obs = {"phenomenonTime": T, "result": 1.25}
    cases: list[tuple[str, str, dict[str, str], Any]] = [
        ("observation under its datastream", f"/v1.1/Datastreams({ds})/Observations", bearer(device), obs),
        ("observation with its datastream link", "/v1.1/Observations", bearer(device),
         {"phenomenonTime": "2026-11-21T03:05:00Z", "result": 2, "Datastream": {"@iot.id": ds}}),
        ("a Thing", "/v1.1/Things", bearer(device), {"name": "gauge", "description": "rain gauge"}),
        ("unknown datastream", "/v1.1/Datastreams(999999)/Observations", bearer(device), obs),
        ("unknown entity set", "/v1.1/Nothings", bearer(device), obs),
        ("not a collection", f"/v1.1/Datastreams({ds})", bearer(device), obs),
        ("not json", f"/v1.1/Datastreams({ds})/Observations", bearer(device), b"{not json"),
        ("no credentials", f"/v1.1/Datastreams({ds})/Observations", {}, obs),
        ("role without sensors.write", f"/v1.1/Datastreams({ds})/Observations", bearer(public), obs),
    ]
    async with _client(hot) as h, _client(routed) as r:
        for name, path, headers, body in cases:
            answers = []
            for client in (h, r):
                if isinstance(body, bytes):
                    resp = await client.post(path, content=body, headers=headers | {"content-type": "application/json"})
                else:
                    resp = await client.post(path, json=body, headers=headers)
                answers.append(_shape(resp))
            assert answers[0] == answers[1], name
            assert answers[0][0] in (201, 400, 401, 403, 404, 409), (name, answers[0])


async def test_other_posts_under_the_prefix_go_through_fastapi(platform: Any) -> None:
    served = serving_app(create_app(platform))
    assert isinstance(served, HotRoutes)
    ds = await _stream(platform)
    device = await token_for(platform, "device")
    metric = platform.metrics.http_requests.labels("POST", "/v1.1/CreateObservations", "201")
    before = metric._value.get()
    inner, served.app = served.app, None
    async with _client(served) as h:
        # with FastAPI gone the hot route still answers a plain create ...
        r = await h.post(f"/v1.1/Datastreams({ds})/Observations", json={"phenomenonTime": T, "result": 3},
                         headers=bearer(device))
        assert r.status_code == 201, r.text
        served.app = inner
        # ... and leaves the data-array and batch routes to FastAPI
        body = [{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
                 "dataArray": [["2026-11-21T04:00:00Z", 4.5]]}]
        r = await h.post("/v1.1/CreateObservations", json=body, headers=bearer(device))
        assert r.status_code == 201, r.text
        assert metric._value.get() == before + 1
        r = await h.post("/v1.1/$batch", json={"requests": []}, headers=bearer(device))
        batch = platform.metrics.http_requests.labels("POST", "/v1.1/$batch", str(r.status_code))
        assert batch._value.get() == 1, r.text      # counted under the $batch route: FastAPI served it
