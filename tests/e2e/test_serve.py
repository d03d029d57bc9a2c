"""``citydata serve`` as a subprocess: health, a CLI-made token on a protected route, ports, shutdown."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import aiomqtt
import httpx
import pytest

from tests.conftest import REPO, free_port
from tests.e2e.conftest import CLI, Server, cli_env, run_cli

pytestmark = pytest.mark.e2e


def test_serve_health_token_and_protected_route(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    denied = httpx.get(f"{server.url}/api/v1/tokens")
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"

    made = run_cli(["tokens", "create", "--role", "admin", "--name", "e2e script"], server.env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("cd_") and "\n" not in token

    r = httpx.get(f"{server.url}/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert any(t["name"] == "e2e script" for t in r.json()["items"])

    device = run_cli(["tokens", "create", "--role", "device", "--name", "gauge"], server.env).stdout.strip()
    r = httpx.get(f"{server.url}/api/v1/tokens", headers={"Authorization": f"Bearer {device}"})
    assert r.status_code == 403


async def test_serve_ingests_a_heartbeat_over_mqtt(server: Server) -> None:
    token = run_cli(["tokens", "create", "--role", "device", "--name", "gauge"], server.env).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        r = await http.post("/api/v1/devices", json={"id": "e2e-1", "kind": "rain_gauge", "name": "E2E"})
        assert r.status_code == 201
        mqtt_url = (await http.get("/api/v1/info")).json()["mqtt_url"]
        port = int(mqtt_url.rsplit(":", 1)[1])
        async with aiomqtt.Client("127.0.0.1", port, username=token, identifier="e2e-dev") as c:
            await c.publish("citydata/devices/e2e-1/heartbeat", b'{"battery": 64}', qos=1)
        import asyncio

        for _ in range(100):
            got = (await http.get("/api/v1/devices/e2e-1")).json()
            if got["last_seen_at"]:
                break
            await asyncio.sleep(0.1)
        assert got["last_heartbeat"]["battery"] == 64


def test_sigterm_stops_cleanly(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0


def test_serve_names_the_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = cli_env(tmp_path / "d", CITYDATA_MQTT_URL=f"embedded://127.0.0.1:{free_port()}")
        r = subprocess.run([*CLI, "serve", "--port", str(port)], env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=60, check=False)
    assert r.returncode != 0
    assert f"127.0.0.1:{port}" in r.stderr and "already in use" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_serve_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "d", CITYDATA_HTTP_PORT="http")
    r = subprocess.run([*CLI, "serve"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("citydata: error: CITYDATA_HTTP_PORT")
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_help_works_everywhere(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "d")
    for args in ([], ["serve"], ["demo"], ["simulate"], ["db"], ["db", "upgrade"], ["config"],
                 ["config", "show"], ["tokens"], ["tokens", "create"], ["city"], ["city", "load"]):
        r = run_cli([*args, "--help"], env)
        assert r.returncode == 0, (args, r.stderr)
        assert "Usage" in r.stdout


def test_db_upgrade_and_config_commands(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "d")
    r = run_cli(["db", "upgrade"], env)
    assert r.returncode == 0 and "revision" in r.stdout
    r = run_cli(["config", "validate"], env)
    assert r.returncode == 0
    r = run_cli(["config", "show", "--json"], env)
    assert r.returncode == 0 and '"bus_url": "memory://"' in r.stdout
    r = run_cli(["tokens", "create", "--role", "wizard", "--name", "x"], env)
    assert r.returncode != 0 and "unknown role" in r.stderr
