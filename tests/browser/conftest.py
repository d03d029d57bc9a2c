"""Browser tests: Debian's Chromium driven by Playwright against a real ``citydata serve`` subprocess.

One server and one browser for the module (starting them is most of the cost). Screenshots go to
``test-artifacts/browser/`` (git-ignored); the README's screenshots go to ``docs/screenshots/``. Without
``/usr/bin/chromium`` the tests are skipped with the install command (``make test`` installs it when root);
with ``CITYDATA_REQUIRE_SERVICES=1`` a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, free_port
from tests.e2e.conftest import CLI, cli_env, wait_http

CHROMIUM = os.environ.get("CITYDATA_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
ARTIFACTS = REPO / "test-artifacts" / "browser"
SCREENSHOTS = REPO / "docs" / "screenshots"
ADMIN_PASSWORD = "Browser-Admin-Pass-2026"
PASSWORD = "Browser-User-Pass-2026"


class LiveServer:
    def __init__(self, port: int, mqtt_port: int, env: dict[str, str], data_dir: Path, log: Any) -> None:
        self.port, self.mqtt_port, self.env, self.data_dir, self.log = port, mqtt_port, env, data_dir, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc = self.spawn()
        self.http = httpx.Client(base_url=self.url, timeout=20)
        r = self.http.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.admin = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def spawn(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*CLI, "serve", "--port", str(self.port)], env=self.env, cwd=REPO, stdout=self.log,
                                stderr=subprocess.STDOUT, text=True)
        wait_http(f"{self.url}/readyz", proc=proc)
        return proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def user(self, username: str, role: str, agency: str | None = None) -> str:
        r = self.http.post("/api/v1/admin/users", headers=self.admin, json={
            "username": username, "password": PASSWORD, "role": role, "agency": agency})
        assert r.status_code in (200, 201), r.text
        return username

    def token(self, role: str, name: str, **extra: Any) -> str:
        r = self.http.post("/api/v1/tokens", headers=self.admin, json={"role": role, "name": name, **extra})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def publish_mqtt(self, topic: str, payload: bytes, token: str) -> None:
        """One QoS 1 publish from a separate thread (Playwright's sync API owns this thread's event loop)."""
        import aiomqtt

        errors: list[BaseException] = []

        async def send() -> None:
            async with aiomqtt.Client("127.0.0.1", self.mqtt_port, username=token, password=token,
                                      identifier="browser-test-device") as client:
                await client.publish(topic, payload, qos=1)

        def run() -> None:
            try:
                asyncio.run(send())
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        if errors:
            raise errors[0]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("browser")
    port, mqtt_port = free_port(), free_port()
    env = cli_env(tmp / "data", CITYDATA_MQTT_URL=f"embedded://127.0.0.1:{mqtt_port}",
                  CITYDATA_ADMIN_PASSWORD=ADMIN_PASSWORD)
    log = open(tmp / "server.log", "w")  # noqa: SIM115
    server = None
    try:
        server = LiveServer(port, mqtt_port, env, tmp / "data", log)
        yield server
    finally:
        if server is not None:
            server.stop()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "server.log", ARTIFACTS / "server.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (as root)"
        if os.environ.get("CITYDATA_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str, *, readme: bool = False, full_page: bool = True) -> Path:
    """Save a screenshot as a test artifact (and as the README's, when ``readme``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if readme:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / f"{name}.png")
    return path
