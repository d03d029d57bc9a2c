"""Dependency faults against private instances (their own PostgreSQL cluster, mosquitto and nats-server on free
ports; the machine's shared services are never touched): each is taken away while the platform ingests, and
brought back. The platform recovers by itself, ``/readyz`` says 503 naming the dependency while the outage lasts
and 200 after, and nothing that was acknowledged is lost.

(Lower-level outage tests exist beside the code: ``tests/store/test_outage.py``, the bridge in
``tests/ingest/test_mqtt.py``, the bus in ``tests/bus/test_bus.py``; these run the whole platform.)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest
from sqlalchemy import select

from citydata.app import Platform
from citydata.sensorthings import model
from citydata.sensorthings import schema as s
from citydata.store.schema import observations
from tests.conftest import REQUIRE, free_port, make_settings, token_for
from tests.store.test_outage import PrivatePostgres, _pg_bin

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
UNIT = {"name": "millimetre", "symbol": "mm", "definition": "http://qudt.org/vocab/unit/MilliM"}


def _binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).exists()), None)
    if found is None:
        if REQUIRE:
            pytest.fail(f"{name} is not installed (CITYDATA_REQUIRE_SERVICES=1)")
        pytest.skip(f"{name} is not installed")
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"private {what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"private {what} did not listen on {port}")


class PrivateProcess:
    """A broker process on a fixed free port that a test stops and starts again."""

    def __init__(self, what: str, argv: list[str], port: int) -> None:
        self.what, self.argv, self.port = what, argv, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, self.what)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class DurablePostgres(PrivatePostgres):
    """The private cluster with ``synchronous_commit=on`` (PostgreSQL's default; the store-level outage tests
    turn it off for speed). With it off, a crash (``pg_ctl -m immediate``) loses the last commits the platform
    had acknowledged: this test saw exactly that. fsync stays off: the test crashes the server process, not the
    machine, so the operating system keeps what was written."""

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=on -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = _pg_bin()
    if bindir is None:
        if REQUIRE:
            pytest.fail("initdb not found (CITYDATA_REQUIRE_SERVICES=1)")
        pytest.skip("initdb not found: PostgreSQL server binaries are not installed")
    pg = DurablePostgres(bindir)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[PrivateProcess]:
    exe = _binary("mosquitto", "/usr/sbin/mosquitto")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    # persistence on: the platform's persistent session (and what arrived for it) survives the restart
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}/\nautosave_interval 1\n")
    broker = PrivateProcess("mosquitto", [exe, "-c", str(conf)], port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateProcess]:
    exe = _binary("nats-server")
    port = free_port()
    server = PrivateProcess("nats-server", [exe, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                                            str(tmp_path / "js")], port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout}s")
        await asyncio.sleep(0.1)


async def _stream(p: Platform) -> int:
    thing = await p.sta.writer.create(model.THING, {
        "name": "fault gauge", "description": "d",
        "Locations": [{"name": "Patong", "description": "d", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [98.296, 7.896]}}],
        "Datastreams": [{"name": "fault", "description": "d", "unitOfMeasurement": UNIT,
                         "observationType": model.OM_MEASUREMENT,
                         "Sensor": {"name": "s", "description": "s", "encodingType": "application/pdf",
                                    "metadata": "m"},
                         "ObservedProperty": {"name": "rain", "definition": "http://example.org/rain",
                                              "description": "rain"}}]})
    return int(await p.store.scalar(select(s.datastreams.c.id).where(s.datastreams.c.thing_id == thing)))


async def _stored(p: Platform, ds: int) -> set[int]:
    rows = await p.store.fetch_all(select(observations.c.result_number).where(observations.c.datastream_id == ds))
    return {int(r["result_number"]) for r in rows}


def _obs(n: int) -> dict[str, Any]:
    return {"phenomenonTime": f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z", "result": float(n)}


@contextlib.asynccontextmanager
async def _client(p: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://citydata.test",
                                 timeout=120) as c:
        yield c


async def _ready(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    r = await http.get("/readyz")
    return r.status_code, r.json()


class HttpIngest:
    """A client posting Observations one after the other; each is sent until acknowledged (201)."""

    def __init__(self, http: httpx.AsyncClient, token: str, ds: int) -> None:
        self.http, self.token, self.ds = http, token, ds
        self.acked: set[int] = set()
        self.refused = 0
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            r = await self.http.post(f"/v1.1/Datastreams({self.ds})/Observations", json=_obs(n),
                                     headers={"Authorization": f"Bearer {self.token}"})
            if r.status_code == 201:
                self.acked.add(n)
                n += 1
            elif r.status_code in (429, 503):
                assert "Retry-After" in r.headers and r.headers["content-type"] == "application/problem+json"
                self.refused += 1
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"{r.status_code}: {r.text}")
            await asyncio.sleep(0.01)

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 120)


async def test_postgres_restarted_mid_ingest(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mqtt_url="none://", db_url=private_pg.url,
                             db_schema=f"f_{uuid.uuid4().hex[:10]}", db_retry_s=60.0, db_batch_ms=5.0)
    async with Platform(settings) as p, _client(p) as http:
        ds = await _stream(p)
        ingest = HttpIngest(http, await token_for(p, "device"), ds)
        await _until(lambda: asyncio.sleep(0, len(ingest.acked) >= 20), 30, "ingest before the outage")
        await asyncio.to_thread(private_pg.stop, "immediate")      # a crash, not a clean shutdown
        await _until(lambda: _is(http, 503, "store"), 30, "/readyz 503 (store)")
        during = len(ingest.acked)
        await asyncio.sleep(2)
        assert len(ingest.acked) <= during + 1      # nothing is acknowledged while the database is away
        await asyncio.to_thread(private_pg.start)
        await _until(lambda: _is(http, 200), 60, "/readyz 200 after the restart")
        await _until(lambda: asyncio.sleep(0, len(ingest.acked) >= during + 20), 60, "ingest after the outage")
        await ingest.finish()
        stored = await _stored(p, ds)
        assert ingest.acked <= stored, f"acknowledged but lost: {sorted(ingest.acked - stored)[:10]}"
        assert p.store.writer is not None and p.store.writer.stats.retries >= 1


async def _is(http: httpx.AsyncClient, status: int, failing: str | None = None) -> bool:
    try:
        code, body = await _ready(http)
    except (httpx.HTTPError, ValueError):
        return False
    if code != status:
        return False
    return failing is None or not body["checks"][failing]["ok"]


async def test_mqtt_broker_restarted(private_mosquitto: PrivateProcess, tmp_path: Path) -> None:
    """External Mosquitto: the broker acknowledges devices itself (its PUBACK is not durable, see
    docs/durability.md); what the platform owes is to reconnect, resubscribe and take every message the broker
    delivers (acknowledged to the broker only after the store commit)."""
    url = f"mqtt://127.0.0.1:{private_mosquitto.port}"
    settings = make_settings(tmp_path, mqtt_url=url, mqtt_client_id=f"citydata-fault-{uuid.uuid4().hex[:6]}")
    async with Platform(settings) as p, _client(p) as http:
        ds = await _stream(p)
        topic = f"v1.1/Datastreams({ds})/Observations"
        sent: set[int] = set()

        async def publish(numbers: range) -> None:
            async with aiomqtt.Client("127.0.0.1", private_mosquitto.port, identifier="fault-dev") as dev:
                for n in numbers:
                    await dev.publish(topic, orjson.dumps(_obs(n)), qos=1)
                    sent.add(n)

        await publish(range(0, 50))
        await _until(lambda: _stored_at_least(p, ds, 50), 30, "50 stored before the outage")
        assert await _is(http, 200)
        await asyncio.to_thread(private_mosquitto.stop)
        await _until(lambda: _is(http, 503, "mqtt"), 30, "/readyz 503 (mqtt)")
        await asyncio.to_thread(private_mosquitto.start)
        await _until(lambda: _is(http, 200), 60, "/readyz 200 after the restart")
        await publish(range(50, 100))
        await _until(lambda: _stored_at_least(p, ds, 100), 30, "100 stored after the outage")
        assert await _stored(p, ds) == sent
        assert p.bridge is not None and p.bridge.reconnects >= 1


async def _stored_at_least(p: Platform, ds: int, n: int) -> bool:
    return len(await _stored(p, ds)) >= n


async def test_nats_restarted(private_nats: PrivateProcess, tmp_path: Path) -> None:
    """NATS JetStream as the bus: while it is away /readyz names the bus; HTTP ingest (stored first, then
    published) keeps its acknowledgements honest; after the restart the bus reconnects by itself."""
    url = f"nats://127.0.0.1:{private_nats.port}"
    settings = make_settings(tmp_path, mqtt_url="none://", bus_url=url,
                             bus_stream=f"CITYFAULT{uuid.uuid4().hex[:6].upper()}")
    async with Platform(settings) as p, _client(p) as http:
        ds = await _stream(p)
        ingest = HttpIngest(http, await token_for(p, "device"), ds)
        await _until(lambda: asyncio.sleep(0, len(ingest.acked) >= 20), 30, "ingest before the outage")
        await asyncio.to_thread(private_nats.stop)
        await _until(lambda: _is(http, 503, "bus"), 30, "/readyz 503 (bus)")
        await asyncio.to_thread(private_nats.start)
        await _until(lambda: _is(http, 200), 60, "/readyz 200 after the restart")
        before = len(ingest.acked)
        await _until(lambda: asyncio.sleep(0, len(ingest.acked) >= before + 20), 60, "ingest after the outage")
        await ingest.finish()
        stored = await _stored(p, ds)
        assert ingest.acked <= stored, f"acknowledged but lost: {sorted(ingest.acked - stored)[:10]}"
