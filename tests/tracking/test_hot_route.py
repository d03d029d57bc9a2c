"""``POST /api/v1/tracking/pings`` is served ahead of FastAPI (``citydata.api.hot_routes``, the front that the HTTP
server serves): the answers must be the same as the routed FastAPI route's, for good requests and for every kind
of error, an unexpected one included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from citydata.api.app import create_app, serving_app
from citydata.api.hot_routes import HotRoutes
from tests.conftest import bearer, token_for
from tests.tracking.conftest import PATONG, START, arrive_and_enrol, ping

PINGS = "/api/v1/tracking/pings"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citydata.test")


def _shape(r: httpx.Response) -> tuple[Any, ...]:
    """What a client sees: status, media type, the auth and retry headers, and the body (a problem's code and
    detail, or the acceptance)."""
    body = r.json()
    if r.headers["content-type"].startswith("application/problem+json"):
        body = {k: body.get(k) for k in ("type", "title", "status", "detail", "code", "instance")}
    return (r.status_code, r.headers["content-type"], r.headers.get("www-authenticate"),
            r.headers.get("retry-after"), body)


async def test_hot_and_routed_pings_answer_alike(tp: Any, tclient: httpx.AsyncClient) -> None:
    hot, routed = serving_app(create_app(tp)), create_app(tp, hot_routes=False)
    assert isinstance(hot, HotRoutes) and serving_app(routed) is routed
    # one traveller per path, so both paths see the same state
    devices = [(await arrive_and_enrol(tp, tclient, n=n))[1] for n in (1, 2)]
    operator = await token_for(tp, "operator")
    stray = await token_for(tp, "device")  # a device token that no traveller enrolled
    t0 = START + timedelta(minutes=1)
    own = bearer  # the path's own device token
    cases: list[tuple[str, Any, Any]] = [
        ("single", own, ping(t0, *PATONG)),
        ("the same again (duplicate)", own, ping(t0, *PATONG)),
        ("batch with a bad item", own, {"pings": [ping(t0 + timedelta(minutes=5), *PATONG),
                                                  {"t": "nonsense", "lat": 1, "lon": 2}]}),
        ("nothing accepted", own, {"pings": [{"t": t0.isoformat(), "lat": 91, "lon": 2}]}),
        ("not json", lambda d: bearer(d) | {"content-type": "application/json"}, b"{not json"),
        ("no credentials", lambda d: {}, ping(t0, *PATONG)),
        ("unknown token", lambda d: bearer("cd_" + "x" * 40), ping(t0, *PATONG)),
        ("malformed basic", lambda d: {"Authorization": "Basic !!!"}, ping(t0, *PATONG)),
        ("unsupported scheme", lambda d: {"Authorization": "Digest abc"}, ping(t0, *PATONG)),
        ("device token of no traveller", lambda d: bearer(stray), ping(t0, *PATONG)),
        ("role without tracking.ping", lambda d: bearer(operator), ping(t0, *PATONG)),
    ]
    async with _client(hot) as h, _client(routed) as r:
        for name, headers_of, body in cases:
            answers = []
            for client, device in ((h, devices[0]), (r, devices[1])):
                headers = headers_of(device)
                if isinstance(body, bytes):
                    resp = await client.post(PINGS, content=body, headers=headers)
                else:
                    resp = await client.post(PINGS, json=body, headers=headers)
                answers.append(_shape(resp))
            assert answers[0] == answers[1], name
    assert answers[0][0] == 403


async def test_hot_route_is_counted_under_its_route_and_leaves_other_routes_alone(
        tp: Any, tclient: httpx.AsyncClient) -> None:
    served = serving_app(create_app(tp))
    assert isinstance(served, HotRoutes) and ("POST", PINGS) in served.routes
    _, device = await arrive_and_enrol(tp, tclient)
    metric = tp.metrics.http_requests.labels("POST", PINGS, "202")
    before = metric._value.get()
    async with _client(served) as h:
        r = await h.post(PINGS, json=ping(START + timedelta(minutes=1), *PATONG), headers=bearer(device))
        assert r.status_code == 202, r.text
        assert r.json() == {"accepted": 1, "rejected": [], "duplicates": 0}
        assert metric._value.get() == before + 1
        # the request was answered by the hot route, not by the application behind it
        inner, served.app = served.app, None  # FastAPI is gone: a ping must still be answered
        r = await h.post(PINGS, json=ping(START + timedelta(minutes=2), *PATONG), headers=bearer(device))
        assert r.status_code == 202, r.text
        served.app = inner
        # other methods and paths still go through the router
        assert (await h.get(PINGS)).status_code == 405
        assert (await h.get("/api/v1/tracking/pingsx")).status_code == 404


async def test_unexpected_error_answers_like_the_routed_route(tp: Any, tclient: httpx.AsyncClient,
                                                              monkeypatch: Any) -> None:
    hot, routed = serving_app(create_app(tp)), create_app(tp, hot_routes=False)
    _, device = await arrive_and_enrol(tp, tclient)
    service = tp.tracking

    async def broken(traveller_id: str, body: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "report", broken)
    metric = tp.metrics.http_requests.labels("POST", PINGS, "500")
    before = metric._value.get()
    answers = []
    for app in (hot, routed):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test") as client:
            r = await client.post(PINGS, json=ping(START + timedelta(minutes=1), *PATONG), headers=bearer(device))
        answers.append(_shape(r))
    assert answers[0] == answers[1]
    assert answers[0][0] == 500 and answers[0][4]["code"] == "internal_error"
    assert metric._value.get() == before + 2


async def test_browser_requests_go_through_cors_when_origins_are_configured(tp: Any,
                                                                            tclient: httpx.AsyncClient) -> None:
    _, device = await arrive_and_enrol(tp, tclient)
    tp.settings = tp.settings.model_copy(update={"cors_origins": ["https://app.example"]})
    served = serving_app(create_app(tp))
    assert isinstance(served, HotRoutes) and served.cors
    body = ping(START + timedelta(minutes=1), *PATONG)
    async with _client(served) as h:
        r = await h.post(PINGS, json=body, headers=bearer(device) | {"Origin": "https://app.example"})
        assert r.status_code == 202, r.text
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        inner, served.app = served.app, None   # without an Origin header the front answers by itself
        r = await h.post(PINGS, json=ping(START + timedelta(minutes=2), *PATONG), headers=bearer(device))
        assert r.status_code == 202, r.text
        assert "access-control-allow-origin" not in r.headers
        served.app = inner
