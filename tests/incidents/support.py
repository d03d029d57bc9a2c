"""Shared IOC test helpers: a started platform with the IOC, local receivers (HTTP, SMTP), CAP validation."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from citydata.clock import DrivenClock
from tests.conftest import make_settings

CAP_XSD = Path(__file__).resolve().parent.parent / "fixtures" / "cap" / "CAP-v1.2.xsd"
_schema: etree.XMLSchema | None = None


def cap_schema() -> etree.XMLSchema:
    global _schema
    if _schema is None:
        _schema = etree.XMLSchema(etree.parse(str(CAP_XSD)))
    return _schema


def assert_valid_cap(xml: bytes | str) -> etree._Element:
    doc = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    schema = cap_schema()
    assert schema.validate(doc), schema.error_log
    return doc


async def attach_ioc(platform: Any) -> bool:
    """Make sure the platform runs the IOC and serves its routes; True when this helper started it (the
    platform's own wiring does it once app.py includes the IOC)."""
    from citydata.incidents.ioc import IOC

    if isinstance(getattr(platform, "ioc", None), IOC):
        return False
    from citydata.api.routes import agencies, alerts, cap, incidents, stream

    platform.ioc = IOC(platform)
    await platform.ioc.start()
    routers = [m.router for m in (alerts, incidents, agencies, cap, stream)]
    for router in routers:
        platform.app.include_router(router)
    platform.app.state.routers = [*platform.app.state.routers, *routers]
    return True


async def start_platform(settings: Any, clock: Any, serve_http: bool = False) -> tuple[Any, bool]:
    from citydata.app import Platform

    p = Platform(settings, clock=clock, serve_http=serve_http)
    await p.start()
    try:
        ours = await attach_ioc(p)
    except BaseException:
        await p.stop()
        raise
    return p, ours


async def stop_platform(p: Any, ours: bool) -> None:
    if ours:
        await p.ioc.stop()
    await p.stop()


@pytest.fixture
async def ioc_platform(tmp_path: Path, clock: DrivenClock) -> AsyncIterator[Any]:
    p, ours = await start_platform(make_settings(tmp_path, mqtt_url="none://"), clock)
    try:
        yield p
    finally:
        await stop_platform(p, ours)


@pytest.fixture
async def ioc_client(ioc_platform: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=ioc_platform.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test") as c:
        yield c


def alert_payload(dedup_key: str = "flood:ds:7", *, kind: str = "env.flood_risk", severity: str = "severe",
                  at: datetime | None = None, evidence_id: str = "obs-1", **extra: Any) -> dict[str, Any]:
    at = at or datetime.fromisoformat("2026-11-21T02:30:00+00:00")
    return {"dedup_key": dedup_key, "kind": kind, "severity": severity, "category": "Met",
            "urgency": "immediate", "certainty": "observed", "subject": "datastream:7",
            "message": "Water level 2.4 m above the warning level at Khlong Bang Yai", "message_th": "ระดับน้ำสูง",
            "location": {"type": "Point", "coordinates": [98.39, 7.89]}, "zone_id": "subdistrict:830101",
            "evidence": [{"kind": "observation.received", "id": evidence_id, "time": at.isoformat(),
                          "summary": {"result": 2.4}}],
            "rule_id": "flood-level", "rule_version": 1, "data": {"level_m": 2.4}, "observed_at": at.isoformat(),
            **extra}


async def publish_raised(platform: Any, payload: dict[str, Any]) -> None:
    from citydata.events import make_event

    await platform.bus.publish(make_event("alert.raised", payload["dedup_key"], platform.clock.now(), payload,
                                          source="rules"))


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Receiver:
    """A real local HTTP server (threads) that records requests and answers with ``status`` after ``delay``."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body})
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json(self, i: int = -1) -> Any:
        return json.loads(self.requests[i]["body"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Any:
    made: list[Receiver] = []

    def make(status: int = 200, delay: float = 0.0) -> Receiver:
        r = Receiver(status, delay)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
