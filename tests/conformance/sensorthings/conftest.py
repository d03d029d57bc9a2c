"""A running ``citydata serve`` per backend, and a small SensorThings client for the conformance suite.

The suite is black-box: it talks to the server over HTTP and MQTT exactly as an external client would. One server
is started per backend per session (``sta`` is parametrised over SQLite and PostgreSQL), with a fresh data dir and,
for PostgreSQL, a fresh schema that is dropped afterwards. Each test creates its own uniquely named entities and
never assumes an empty database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import PG_URL, REPO, free_port, need_service

CLI = [sys.executable, "-m", "citydata"]
VERSION = "v1.1"
PREFIX = "http://www.opengis.net/spec/iot_sensing/1.1/req/"

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
OM_CATEGORY = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CategoryObservation"
OM_COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
OM_TRUTH = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"
OM_OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation"
OM_COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
GEOJSON = "application/geo+json"
GEOJSON_10 = "application/vnd.geo+json"
CELSIUS = {"name": "degree Celsius", "symbol": "degC", "definition": "http://unitsofmeasure.org/ucum.html#para-30"}

# Entity set name → entity type name, and each type's required navigation names (OGC 18-088 §8.2).
SETS = {
    "Things": "Thing", "Locations": "Location", "HistoricalLocations": "HistoricalLocation",
    "Datastreams": "Datastream", "Sensors": "Sensor", "ObservedProperties": "ObservedProperty",
    "Observations": "Observation", "FeaturesOfInterest": "FeatureOfInterest",
}
NAVIGATION = {
    "Thing": ("Locations", "HistoricalLocations", "Datastreams"),
    "Location": ("Things", "HistoricalLocations"),
    "HistoricalLocation": ("Thing", "Locations"),
    "Datastream": ("Thing", "Sensor", "ObservedProperty", "Observations"),
    "Sensor": ("Datastreams",),
    "ObservedProperty": ("Datastreams",),
    "Observation": ("Datastream", "FeatureOfInterest"),
    "FeatureOfInterest": ("Observations",),
    "MultiDatastream": ("Thing", "Sensor", "ObservedProperties", "Observations"),
}


def key(entity_id: Any) -> str:
    """The key segment of a resource path: ``(1)`` for a number, ``('abc')`` for a string (OData rules)."""
    if isinstance(entity_id, str):
        return "('" + entity_id.replace("'", "''") + "')"
    return f"({entity_id})"


def path(set_name: str, entity_id: Any) -> str:
    return f"{set_name}{key(entity_id)}"


def unique(prefix: str = "cf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def lit(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Sta:
    """A SensorThings client for one running server."""

    root: str                       # http://127.0.0.1:PORT
    token: str
    mqtt_host: str
    mqtt_port: int
    backend: str
    http: httpx.Client = field(repr=False)
    anon: httpx.Client = field(repr=False)
    clock: int = 0

    @property
    def base(self) -> str:
        return f"{self.root}/{VERSION}"

    def url(self, rel: str) -> str:
        if rel.startswith("http://") or rel.startswith("https://"):
            return rel
        return f"{self.base}/{rel.lstrip('/')}" if rel else self.base

    # -- raw requests -----------------------------------------------------------------------------------------
    def get(self, rel: str, params: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return self.anon.get(self.url(rel), params=params, **kw)

    def post(self, rel: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.post(self.url(rel), json=body, **kw)

    def patch(self, rel: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.patch(self.url(rel), json=body, **kw)

    def put(self, rel: str, body: Any, **kw: Any) -> httpx.Response:
        return self.http.put(self.url(rel), json=body, **kw)

    def delete(self, rel: str, **kw: Any) -> httpx.Response:
        return self.http.delete(self.url(rel), **kw)

    # -- helpers ----------------------------------------------------------------------------------------------
    def get_ok(self, rel: str, params: dict[str, Any] | None = None) -> Any:
        r = self.get(rel, params)
        assert r.status_code == 200, f"GET {rel} {params} → {r.status_code} {r.text[:500]}"
        return r.json()

    def create(self, rel: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an entity, check 201 + Location, and return the created entity as read back from Location."""
        r = self.post(rel, body)
        assert r.status_code == 201, f"POST {rel} → {r.status_code} {r.text[:800]}"
        loc = r.headers.get("location")
        assert loc, "201 Created must carry a Location header (/req/create-update-delete/create-entity)"
        got = self.anon.get(loc)
        assert got.status_code == 200, f"GET {loc} → {got.status_code} {got.text[:300]}"
        entity: dict[str, Any] = got.json()
        return entity

    def all_pages(self, rel: str, params: dict[str, Any] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Every entity of a collection, following @iot.nextLink to the end."""
        out: list[dict[str, Any]] = []
        page = self.get_ok(rel, params)
        for _ in range(limit):
            out.extend(page["value"])
            nxt = page.get("@iot.nextLink")
            if not nxt:
                return out
            page = self.get_ok(nxt)
        raise AssertionError(f"more than {limit} pages for {rel}")

    # -- fixtures built from the model ------------------------------------------------------------------------
    def thing(self, **extra: Any) -> dict[str, Any]:
        body = {"name": unique("thing"), "description": "a conformance-test thing", **extra}
        return self.create("Things", body)

    def sensor(self, **extra: Any) -> dict[str, Any]:
        body = {"name": unique("sensor"), "description": "a thermometer", "encodingType": "application/pdf",
                "metadata": "https://example.org/ds18b20.pdf", **extra}
        return self.create("Sensors", body)

    def observed_property(self, **extra: Any) -> dict[str, Any]:
        body = {"name": unique("op"), "definition": "https://example.org/def/air_temperature",
                "description": "air temperature", **extra}
        return self.create("ObservedProperties", body)

    def location(self, lon: float = 98.39, lat: float = 7.88, **extra: Any) -> dict[str, Any]:
        body = {"name": unique("loc"), "description": "a place in Phuket", "encodingType": GEOJSON,
                "location": point(lon, lat), **extra}
        return self.create("Locations", body)

    def feature(self, lon: float = 98.30, lat: float = 7.90, **extra: Any) -> dict[str, Any]:
        body = {"name": unique("foi"), "description": "a feature", "encodingType": GEOJSON,
                "feature": point(lon, lat), **extra}
        return self.create("FeaturesOfInterest", body)

    def datastream(self, thing: dict[str, Any] | None = None, observation_type: str = OM_MEASUREMENT,
                   **extra: Any) -> dict[str, Any]:
        thing = thing or self.thing()
        body = {"name": unique("ds"), "description": "a datastream", "unitOfMeasurement": CELSIUS,
                "observationType": observation_type, "Thing": {"@iot.id": thing["@iot.id"]},
                "Sensor": {"@iot.id": self.sensor()["@iot.id"]},
                "ObservedProperty": {"@iot.id": self.observed_property()["@iot.id"]}, **extra}
        return self.create("Datastreams", body)

    def observation(self, datastream: dict[str, Any], result: Any, time_: str | None = None,
                    **extra: Any) -> dict[str, Any]:
        """An Observation; without ``time_`` each call gets a distinct phenomenonTime (one second apart)."""
        if time_ is None:
            self.clock += 1
            time_ = (datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=self.clock)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"phenomenonTime": time_, "result": result, "Datastream": {"@iot.id": datastream["@iot.id"]},
                **extra}
        return self.create("Observations", body)

    def located_datastream(self) -> dict[str, Any]:
        """A datastream whose Thing has a Location (so Observations may omit their FeatureOfInterest)."""
        loc = self.location()
        thing = self.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
        return self.datastream(thing)


def _start(tmp: Path, backend: str) -> tuple[subprocess.Popen[str], dict[str, str], int, int, Any]:
    port, mqtt_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")}
    env.update({"CITYDATA_DATA_DIR": str(tmp / "data"), "CITYDATA_LOG_FORMAT": "text",
                "CITYDATA_MQTT_URL": f"embedded://127.0.0.1:{mqtt_port}"})
    schema = None
    if backend == "postgresql":
        schema = f"sta_{uuid.uuid4().hex[:12]}"
        env.update({"CITYDATA_DB_URL": PG_URL, "CITYDATA_DB_SCHEMA": schema})
    log = open(tmp / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    return proc, env, port, mqtt_port, (log, schema)


def _drop_schema(schema: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def sta(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sta]:
    """``citydata serve`` on free ports with an admin token, once per backend per session.

    PostgreSQL goes through ``need_service`` (as the ``pg_url`` fixture does, which is function-scoped and so
    cannot feed a session fixture): it skips when PostgreSQL is missing, and fails under
    ``CITYDATA_REQUIRE_SERVICES=1``.
    """
    backend = str(request.param)
    if backend == "postgresql":
        need_service("PostgreSQL", PG_URL)
    tmp = tmp_path_factory.mktemp(f"sta-{backend}")
    proc, env, port, mqtt_port, (log, schema) = _start(tmp, backend)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: "
                                     f"{(tmp / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{root}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("server did not become healthy in 60 s")
            time.sleep(0.2)
        made = subprocess.run([*CLI, "tokens", "create", "--role", "admin", "--name", "conformance"], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=30) as http, httpx.Client(timeout=30) as anon:
            yield Sta(root, token, "127.0.0.1", mqtt_port, backend, http, anon)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if schema:
            _drop_schema(schema)


# -- MQTT ---------------------------------------------------------------------------------------------------------

@dataclass
class Inbox:
    """Messages received on MQTT subscriptions, as (topic, decoded JSON or raw text)."""

    messages: list[tuple[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, topic: str) -> list[Any]:
        return [payload for t, payload in self.messages if t == topic]

    async def wait_for(self, topic: str, predicate: Any = None, timeout: float = 5.0) -> Any:
        """The first message on ``topic`` matching ``predicate`` (a callable on the payload)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for t, payload in self.messages:
                if t == topic and (predicate is None or _matches(predicate, payload)):
                    return payload
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = [t for t, _ in self.messages]
                raise AssertionError(f"no matching message on {topic!r} within {timeout}s (got topics {seen})")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


def _matches(predicate: Any, payload: Any) -> bool:
    try:
        return bool(predicate(payload))
    except (AttributeError, KeyError, TypeError, IndexError):
        return False


@contextlib.asynccontextmanager
async def mqtt_subscribed(sta: Sta, *topics: str) -> AsyncIterator[Inbox]:
    """An MQTT session (token as username) subscribed to ``topics``; yields an Inbox filled in the background."""
    import aiomqtt

    inbox = Inbox()
    async with aiomqtt.Client(sta.mqtt_host, sta.mqtt_port, username=sta.token, password=None,
                              identifier=unique("cf-sub")) as client:
        for t in topics:
            await client.subscribe(t, qos=1)

        async def pump() -> None:
            async for msg in client.messages:
                raw = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload).encode()
                try:
                    payload: Any = json.loads(raw)
                except ValueError:
                    payload = raw.decode(errors="replace")
                inbox.messages.append((str(msg.topic), payload))
                inbox.arrived.set()

        task = asyncio.create_task(pump())
        try:
            await asyncio.sleep(0.2)        # let the broker settle the subscriptions
            yield inbox
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def mqtt_publish(sta: Sta, topic: str, payload: Any) -> None:
    import aiomqtt

    async with aiomqtt.Client(sta.mqtt_host, sta.mqtt_port, username=sta.token, password=None,
                              identifier=unique("cf-pub")) as client:
        await client.publish(topic, json.dumps(payload).encode(), qos=1)


def wait_until(fn: Any, timeout: float = 5.0, interval: float = 0.1) -> Any:
    """Poll ``fn`` until it returns something truthy; return it, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {got!r})")
        time.sleep(interval)


async def async_wait_until(fn: Any, timeout: float = 5.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(fn)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {got!r})")
        await asyncio.sleep(interval)


def q(value: str) -> str:
    """Percent-encode a query value (for hand-built URLs)."""
    return quote(value, safe="")
