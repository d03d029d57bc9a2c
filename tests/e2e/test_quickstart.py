"""The README's quick start, the way a newcomer runs it: ``make demo`` in the background, then look."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import cli_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _start_demo(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[str], str]:
    env = cli_env(data_dir)
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(["make", "demo"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log_path.read_text()
        match = re.search(r"API docs\s+(http://\S+)/docs", text)
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"make demo exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.3)
    raise AssertionError("make demo printed no URL in time:\n" + log_path.read_text()[-3000:])


def _stop(proc: subprocess.Popen[str]) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_make_demo_serves_and_keeps_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    proc, url = _start_demo(data_dir, tmp_path / "demo1.log")
    try:
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{url}/docs", timeout=5).status_code == 200
        for page in ("/ioc/", "/app/"):     # the built dashboard and tourist app are served by the demo
            assert httpx.get(f"{url}{page}", timeout=5).status_code == 200, page
        log = (tmp_path / "demo1.log").read_text()
        mqtt = re.search(r"MQTT broker\s+mqtt://127\.0\.0\.1:(\d+)", log)
        assert mqtt, log            # a free port was picked: 1883 is taken by Mosquitto on this machine
        token = (data_dir / "demo_simulator_token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        devices: list[dict[str, object]] = []
        for _ in range(100):        # the simulator registers the fleet and sends heartbeats
            devices = httpx.get(f"{url}/api/v1/devices", headers=headers, timeout=5).json()["items"]
            if devices and any(d["last_seen_at"] for d in devices):
                break
            time.sleep(0.3)
        assert len(devices) >= 19
        assert any(d["last_seen_at"] for d in devices)
    finally:
        assert _stop(proc) in (0, 2, 130, -2)   # make itself dies of the SIGINT; the platform then stops
    assert "stopping: flushing queued writes" in (tmp_path / "demo1.log").read_text()

    password = (data_dir / "admin_password").read_text()
    proc, url = _start_demo(data_dir, tmp_path / "demo2.log")
    try:
        token = (data_dir / "demo_simulator_token").read_text().strip()
        devices = httpx.get(f"{url}/api/v1/devices", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).json()["items"]
        assert len(devices) >= 19 and any(d["last_seen_at"] for d in devices)   # kept from the first run
        assert (data_dir / "admin_password").read_text() == password
    finally:
        _stop(proc)
