"""``citydata tracking rotate-keys`` and ``purge`` against a real database written by a platform."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path

from typer.testing import CliRunner

from citydata.cli.tracking import app
from tests.conftest import make_settings
from tests.tracking.conftest import arrival_body


async def _seed(tmp_path: Path) -> str:
    from citydata.app import Platform
    from citydata.auth import Principal, Role
    from citydata.tracking import start_tracking
    from citydata.tracking.arrivals import ArrivalIn

    p = Platform(make_settings(tmp_path, mqtt_url="none://"))
    async with p:
        svc = await start_tracking(p, timers=False)
        out = await svc.arrive(Principal("imm", Role.IMMIGRATION, "token"), ArrivalIn.model_validate(arrival_body(7)))
        await svc.stop()
    return out.traveller_id


async def _identity(tmp_path: Path, keys: str, tid: str) -> tuple[str, str]:
    from sqlalchemy import select

    from citydata.app import Platform
    from citydata.auth import Principal, Role
    from citydata.tracking import start_tracking
    from citydata.tracking.schema import tracking_identity

    p = Platform(make_settings(tmp_path, mqtt_url="none://", pii_keys=keys))
    async with p:
        svc = await start_tracking(p, timers=False)
        who = await svc.vault.read(Principal("imm", Role.IMMIGRATION, "token"), tid, "cli test")
        ct = await p.store.scalar(select(tracking_identity.c.name_ct))
        await svc.stop()
    return who["name"], ct


def test_rotate_keys_and_purge(tmp_path: Path) -> None:
    tid = asyncio.run(_seed(tmp_path))
    data = tmp_path / "data"
    old = (data / "pii_keys").read_text().strip()
    new = "k2:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {"CITYDATA_DATA_DIR": str(data), "CITYDATA_PII_KEYS": f"{new},{old}", "CITYDATA_MQTT_URL": "none://"}
    result = CliRunner().invoke(app, ["rotate-keys", "--chunk", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 identities re-encrypted"
    name, ct = asyncio.run(_identity(tmp_path, new, tid))     # the old key is gone: still readable
    assert name == "Erika Mustermann 7" and ct.startswith("k2:")
    result = CliRunner().invoke(app, ["purge"], env={**env, "CITYDATA_PII_KEYS": new})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"travellers": 0, "pings": 0, "identities": 0}
