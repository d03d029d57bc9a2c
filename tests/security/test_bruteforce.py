"""Token brute force over HTTP: guessing bearer tokens from one client address is throttled (429 with
Retry-After, problem+json, counted), a correct token guessed meanwhile is refused too (a guesser cannot tell a
hit), another address is unaffected, and the throttle lifts when the window has passed on the platform's clock."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import httpx

from citydata.app import Platform
from citydata.clock import DrivenClock
from tests.conftest import bearer, make_settings, token_for


async def test_guessing_tokens_is_throttled_per_client_address(tmp_path: Path) -> None:
    clock = DrivenClock()
    async with Platform(make_settings(tmp_path, mqtt_url="none://"), clock=clock) as p:
        good = await token_for(p, "operator")

        def client(address: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app, client=(address, 40000)),
                                     base_url="http://citydata.test")

        async with client("198.51.100.7") as guesser, client("203.0.113.9") as other:
            limit = p.settings.login_max_failures
            for _ in range(limit):
                r = await guesser.get("/api/v1/alerts", headers=bearer(f"cd_{secrets.token_urlsafe(32)}"))
                assert r.status_code == 401
            r = await guesser.get("/api/v1/alerts", headers=bearer(f"cd_{secrets.token_urlsafe(32)}"))
            assert r.status_code == 429 and r.json()["code"] == "too_many_failures"
            assert r.headers["content-type"] == "application/problem+json" and int(r.headers["Retry-After"]) >= 1
            assert (await guesser.get("/api/v1/alerts", headers=bearer(good))).status_code == 429
            assert (await other.get("/api/v1/alerts", headers=bearer(good))).status_code == 200
            assert f'citydata_auth_failures_total{{code="invalid_token"}} {float(limit)}' in \
                p.metrics.render().decode()
            clock.set(clock.now() + timedelta(seconds=p.throttle.window_s + 1))
            assert (await guesser.get("/api/v1/alerts", headers=bearer(good))).status_code == 200
