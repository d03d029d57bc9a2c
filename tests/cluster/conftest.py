"""A private NATS JetStream server per test (its own port and store directory), and a ``LocalCluster`` of
``citydata serve`` subprocesses on it and on a fresh PostgreSQL schema."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from citydata.cluster.local import LocalCluster
from citydata.config import Settings
from tests.conftest import REQUIRE, free_port


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nats-server did not listen")


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[str]:
    """``nats-server -js`` on a free port with its store in the test's directory (never the shared one)."""
    if shutil.which("nats-server") is None:
        if REQUIRE:
            pytest.fail("nats-server is not on PATH (CITYDATA_REQUIRE_SERVICES=1)")
        pytest.skip("nats-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen(["nats-server", "-js", "-p", str(port), "-sd", str(tmp_path / "jetstream")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def cluster(tmp_path: Path, private_nats: str, pg_url: str, pg_schema: str) -> Iterator[LocalCluster]:
    # capabilities that do not take part in these tests stay off, so a node starts in a few seconds
    off = {f"CITYDATA_{name.upper()}": "false" for name in ("vision_enabled", "wifi_enabled")
           if name in Settings.model_fields}
    c = LocalCluster.create(tmp_path / "data", bus_url=private_nats, db_url=pg_url, db_schema=pg_schema,
                            partitions=8, lease_s=3.0, CITYDATA_BUS_ACK_WAIT_S="4", **off)
    try:
        yield c
    finally:
        c.stop_all()
