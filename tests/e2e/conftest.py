"""End-to-end helpers: the real ``citydata`` command in a subprocess, talking over real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, free_port

CLI = [sys.executable, "-m", "citydata"]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")}
    env.update({"CITYDATA_DATA_DIR": str(data_dir), "CITYDATA_LOG_FORMAT": "text", **extra})
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[Any] | None = None) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code < 500:
                return r
        except httpx.HTTPError as err:
            last = err
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout}s ({last})")


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str], port: int, proc: subprocess.Popen[str]) -> None:
        self.data_dir, self.env, self.port, self.proc = data_dir, env, port, proc
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``citydata serve`` on free HTTP and MQTT ports, on a temporary SQLite data dir."""
    port, mqtt_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = cli_env(data_dir, CITYDATA_MQTT_URL=f"embedded://127.0.0.1:{mqtt_port}")
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        yield Server(data_dir, env, port, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
