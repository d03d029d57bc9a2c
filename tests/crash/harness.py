"""Crash harness: ``citydata serve`` SIGKILLed at random points while clients ingest over HTTP and MQTT QoS 1.

Used by ``tests/crash/test_kill.py`` (a few kills per backend, in ``make test``) and ``bench/crash.py`` (the
20-kill runs). The clients behave like real devices: each Observation is sent until it is acknowledged (HTTP
201, or the embedded broker's PUBACK, which the platform sends only after the store committed). A request cut
off by the kill is sent again after the restart, so the same Observation may arrive twice: storage must be
idempotent. At the end the stored rows are counted straight from the database:

* every acknowledged Observation is there (nothing acknowledged is missing),
* each (datastream, phenomenonTime) is stored once (nothing duplicated), and nothing that was never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "citydata"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
UNIT = {"name": "millimetre", "symbol": "mm", "definition": "http://qudt.org/vocab/unit/MilliM"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iso(seq: int) -> str:
    return (T0 + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Tally:
    """What one client sent and what was acknowledged to it."""

    acked: set[int] = field(default_factory=set)
    attempts: int = 0
    resent: int = 0          # Observations whose send got no answer (cut off by a kill), sent again
    refused: int = 0         # 503/429 answers (retried later)


@dataclass
class CrashResult:
    backend: str
    kills: int
    seconds: float
    http: Tally
    mqtt: Tally
    stored_http: int
    stored_mqtt: int
    missing: int             # acknowledged but not stored
    duplicated: int          # (datastream, time) stored more than once
    unexpected: int          # stored but never sent
    restart_s: list[float]

    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.unexpected == 0

    def summary(self) -> dict[str, Any]:
        return {"backend": self.backend, "kills": self.kills, "seconds": round(self.seconds, 1),
                "http_acked": len(self.http.acked), "http_resent": self.http.resent,
                "http_refused": self.http.refused, "mqtt_acked": len(self.mqtt.acked),
                "mqtt_resent": self.mqtt.resent, "stored_http": self.stored_http,
                "stored_mqtt": self.stored_mqtt, "missing": self.missing, "duplicated": self.duplicated,
                "unexpected": self.unexpected,
                "restart_s_median": round(sorted(self.restart_s)[len(self.restart_s) // 2], 2)
                if self.restart_s else None}


class Server:
    """One ``citydata serve`` subprocess on fixed ports (kept across restarts: the MQTT client reconnects)."""

    def __init__(self, workdir: Path, db_url: str | None = None, db_schema: str | None = None) -> None:
        self.workdir = workdir
        self.port, self.mqtt_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")}
        env.update({"CITYDATA_DATA_DIR": str(workdir / "data"), "CITYDATA_LOG_FORMAT": "text",
                    "CITYDATA_MQTT_URL": f"embedded://127.0.0.1:{self.mqtt_port}",
                    "CITYDATA_SHUTDOWN_GRACE_S": "2"})
        if db_url:
            env["CITYDATA_DB_URL"] = db_url
        if db_schema:
            env["CITYDATA_DB_SCHEMA"] = db_schema
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def cli(self, *args: str) -> str:
        done = subprocess.run([*CLI, *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"citydata {' '.join(args)} failed: {done.stderr[-1000:]}")
        return done.stdout.strip()

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([*CLI, "serve", "--port", str(self.port)], env=self.env, cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    async def wait_ready(self, timeout: float = 90.0) -> float:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() - started < timeout:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.workdir}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s; see {self.workdir}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def _setup(server: Server, token: str) -> tuple[int, int]:
    """A Thing with two Datastreams: one fed over HTTP, one over MQTT."""
    def stream(name: str) -> dict[str, Any]:
        return {"name": name, "description": name, "unitOfMeasurement": UNIT,
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"name": f"{name} sensor", "description": "s", "encodingType": "application/pdf",
                           "metadata": "spec.pdf"},
                "ObservedProperty": {"name": f"{name} prop", "definition": f"http://example.org/{name}",
                                     "description": name}}

    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30) as http:
        r = await http.post("/v1.1/Things", json={"name": "crash gauge", "description": "crash test",
                                                  "Locations": [{"name": "Patong", "description": "beach road",
                                                                 "encodingType": "application/geo+json",
                                                                 "location": {"type": "Point",
                                                                              "coordinates": [98.296, 7.896]}}],
                                                  "Datastreams": [stream("crash-http"), stream("crash-mqtt")]})
        r.raise_for_status()
        r = await http.get("/v1.1/Datastreams", params={"$select": "id,name", "$top": "100"})
        r.raise_for_status()
        ids = {d["name"]: int(d["@iot.id"]) for d in r.json()["value"]}
    return ids["crash-http"], ids["crash-mqtt"]


async def _http_client(server: Server, token: str, ds: int, tally: Tally, stop: asyncio.Event,
                       concurrency: int = 4) -> None:
    """``concurrency`` senders; each sends the next Observation until it is acknowledged (201)."""
    next_seq = iter(range(10**9))

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=10) as http:
            while not stop.is_set():
                seq = next(next_seq)
                body = {"phenomenonTime": iso(seq), "result": float(seq)}
                cut = False
                while True:
                    tally.attempts += 1
                    try:
                        r = await http.post(f"/v1.1/Datastreams({ds})/Observations", json=body)
                    except httpx.HTTPError:
                        if not cut:    # counted once per Observation, however many tries the restart takes
                            tally.resent += 1
                        cut = True
                        await asyncio.sleep(0.2)
                        continue
                    if r.status_code == 201:
                        tally.acked.add(seq)
                        break
                    if r.status_code in (429, 503):
                        tally.refused += 1
                        await asyncio.sleep(float(r.headers.get("Retry-After", "0.5")) / 4)
                        continue
                    raise AssertionError(f"unexpected answer {r.status_code}: {r.text[:300]}")
                if stop.is_set():
                    return

    await asyncio.gather(*(sender() for _ in range(concurrency)))


def _raise_first(results: list[Any]) -> None:
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def _mqtt_client(server: Server, token: str, ds: int, tally: Tally, stop: asyncio.Event,
                       window: int = 8) -> None:
    """A device publishing QoS 1 with up to ``window`` messages in flight; a message is done at its PUBACK.
    After a disconnect everything not acknowledged is published again on the new connection."""
    topic = f"v1.1/Datastreams({ds})/Observations"
    seq = 0
    pending: set[int] = set()     # sent at least once, not acknowledged
    while not stop.is_set():
        try:
            async with aiomqtt.Client("127.0.0.1", server.mqtt_port, username=token, identifier="crash-device",
                                      clean_session=True, timeout=10) as client:
                async def publish(n: int, again: bool) -> None:
                    tally.attempts += 1
                    if again:
                        tally.resent += 1
                    payload = orjson.dumps({"phenomenonTime": iso(n), "result": float(n)})
                    await client.publish(topic, payload, qos=1, timeout=10)
                    pending.discard(n)
                    tally.acked.add(n)

                if pending:   # cut off by the last kill: send again
                    _raise_first(await asyncio.gather(*(publish(n, True) for n in sorted(pending)),
                                                      return_exceptions=True))
                while not stop.is_set():
                    batch = list(range(seq, seq + window))
                    seq += window
                    pending.update(batch)
                    _raise_first(await asyncio.gather(*(publish(n, False) for n in batch), return_exceptions=True))
        except (aiomqtt.MqttError, TimeoutError, OSError):
            await asyncio.sleep(0.2)
    # drain: whatever is still pending after stop is sent until acknowledged
    while pending:
        try:
            async with aiomqtt.Client("127.0.0.1", server.mqtt_port, username=token, identifier="crash-device",
                                      clean_session=True, timeout=10) as client:
                for n in sorted(pending):
                    tally.resent += 1
                    await client.publish(topic, orjson.dumps({"phenomenonTime": iso(n), "result": float(n)}),
                                         qos=1, timeout=10)
                    pending.discard(n)
                    tally.acked.add(n)
        except (aiomqtt.MqttError, TimeoutError, OSError):
            await asyncio.sleep(0.2)


async def _count(db_url: str, db_schema: str | None, ds: int) -> tuple[list[int], int]:
    """(the sequence numbers stored for ``ds``, how many (datastream, time) pairs are stored more than once),
    read straight from the database."""
    table = f'"{db_schema}".observations' if db_schema else "observations"
    dup_sql = (f"SELECT COUNT(*) FROM (SELECT datastream_id, phenomenon_time FROM {table} "
               "WHERE datastream_id = {p} GROUP BY datastream_id, phenomenon_time HAVING COUNT(*) > 1) d")
    if db_url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            times: list[Any] = [r[0] for r in await conn.fetch(
                f"SELECT phenomenon_time FROM {table} WHERE datastream_id = $1", ds)]
            dup = await conn.fetchval(dup_sql.format(p="$1"), ds)
        finally:
            await conn.close()
    else:
        import sqlite3

        db = sqlite3.connect(db_url.split("sqlite:///", 1)[1])
        try:
            times = [r[0] for r in db.execute(f"SELECT phenomenon_time FROM {table} WHERE datastream_id = ?",
                                               (ds,))]
            dup = db.execute(dup_sql.format(p="?"), (ds,)).fetchone()[0]
        finally:
            db.close()
    seqs = []
    for t in times:
        if isinstance(t, str):
            t = datetime.fromisoformat(t.replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        seqs.append(int((t - T0).total_seconds()))
    return seqs, int(dup)


async def run_crash(workdir: Path, *, kills: int, db_url: str | None = None, db_schema: str | None = None,
                    min_up_s: float = 0.5, max_up_s: float = 3.0, seed: int | None = None) -> CrashResult:
    """Start the server, ingest over HTTP and MQTT, SIGKILL it ``kills`` times at random points (each after a
    random ``min_up_s``..``max_up_s`` of ingest), restart it each time, then stop ingest and count."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    server = Server(workdir, db_url, db_schema)
    backend = "postgresql" if db_url and db_url.startswith("postgresql") else "sqlite"
    server.start()
    restart_s: list[float] = []
    started = time.monotonic()
    try:
        await server.wait_ready()
        token = await asyncio.to_thread(server.cli, "tokens", "create", "--role", "admin", "--name", "crash")
        ds_http, ds_mqtt = await _setup(server, token)
        stop = asyncio.Event()
        http_tally, mqtt_tally = Tally(), Tally()
        clients = [asyncio.create_task(_http_client(server, token, ds_http, http_tally, stop)),
                   asyncio.create_task(_mqtt_client(server, token, ds_mqtt, mqtt_tally, stop))]
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(min_up_s, max_up_s))
            for task in clients:
                if task.done():
                    task.result()   # a client that failed: raise its error
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            server.start()
            restart_s.append(await server.wait_ready())
        await asyncio.sleep(rng.uniform(min_up_s, max_up_s))
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 120)
    finally:
        server.stop()
    seconds = time.monotonic() - started
    url = db_url or f"sqlite:///{(workdir / 'data' / 'citydata.db').as_posix()}"
    stored_http, dup_http = await _count(url, db_schema, ds_http)
    stored_mqtt, dup_mqtt = await _count(url, db_schema, ds_mqtt)
    # Every sent Observation was eventually acknowledged, so the stored set must equal the acknowledged set.
    missing = len(http_tally.acked - set(stored_http)) + len(mqtt_tally.acked - set(stored_mqtt))
    unexpected = len(set(stored_http) - http_tally.acked) + len(set(stored_mqtt) - mqtt_tally.acked)
    duplicated = dup_http + dup_mqtt + (len(stored_http) - len(set(stored_http))) + \
        (len(stored_mqtt) - len(set(stored_mqtt)))
    return CrashResult(backend, kills, seconds, http_tally, mqtt_tally, len(stored_http), len(stored_mqtt),
                       missing, duplicated, unexpected, restart_s)
