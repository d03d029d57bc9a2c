"""No raw MAC anywhere: not in any table (SQLite file bytes, every PostgreSQL row), not in the dead letters, not
in the logs; randomised MACs are counted separately."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from tests.conftest import bearer, token_for

MACS = ["3c:22:fb:a1:b2:c3", "da:a1:19:0d:0e:0f", "00:1e:c2:77:88:99"]


def spellings(mac: str) -> list[str]:
    digits = mac.replace(":", "")
    pairs = mac.split(":")
    return [mac, mac.upper(), "-".join(pairs), "-".join(pairs).upper(), digits, digits.upper(),
            f"{digits[:4]}.{digits[4:8]}.{digits[8:]}"]


def lines(now: Any) -> list[tuple[str, str]]:
    t = now.isoformat()
    out = []
    for i, mac in enumerate(MACS):
        calling = "-".join(mac.split(":")).upper()
        out.append(("jsonl", orjson.dumps({"Acct-Status-Type": "Start", "Calling-Station-Id": calling,
                                          "NAS-Identifier": "wifi-old-town-001", "Acct-Session-Id": f"P{i}",
                                          "Event-Timestamp": t}).decode()))
        out.append(("syslog", f"<30>1 {t} wifi-kata-001 hostapd - - - wlan0: AP-STA-CONNECTED {mac}"))
        out.append(("syslog", f"<30>1 {t} nowhere hostapd - - - wlan0: AP-STA-CONNECTED {mac}"))    # dead letter
        out.append(("jsonl", f'{{"broken": "{mac}"'))                                               # dead letter
    return out


@pytest.mark.parametrize("backend_settings", ["sqlite", "postgresql"], indirect=True)
async def test_no_raw_mac_in_the_database_or_the_logs(backend_platform: Any, caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    p = backend_platform
    caplog.set_level(logging.DEBUG)
    import httpx

    device = bearer(await token_for(p, "device"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://t") as client:
        for fmt, line in lines(p.clock.now()):
            r = await client.post(f"/api/v1/wifi/events?format={fmt}", content=line, headers=device)
            assert r.status_code == 202
    await p.wifi.flush()
    assert await p.dead_letters.count("wifi") == 6
    await p.wifi.stop()               # flushes; then look at everything stored
    p.wifi = None

    needles = [s.lower() for mac in MACS for s in spellings(mac)]
    if p.store.dialect == "sqlite":
        await p.store.writer.stop(5)
        db = Path(p.store.url.split("///", 1)[1])
        blob = b"".join(f.read_bytes() for f in db.parent.glob(db.name + "*")).lower()
        assert len(blob) > 100_000
        found = [n for n in needles if n.encode() in blob]
        assert b"wifi-old-town-001" in blob and b"<mac>" in blob      # the records are there, masked
    else:
        found, rows = [], ""
        async with p.store.read() as conn:
            tables = [r[0] for r in await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"))]
            assert "wifi_events" in tables and "dead_letters" in tables
            for table in tables:
                for (row,) in await conn.execute(text(f'SELECT t::text FROM "{table}" t')):
                    found += [n for n in needles if n in row.lower()]
                    rows += row if ("wifi-old-town-001" in row or "<mac>" in row) else ""
        assert "wifi-old-town-001" in rows and "<mac>" in rows
    assert found == []
    logged = caplog.text.lower()
    assert [n for n in needles if n in logged] == []


async def test_randomised_macs_are_counted_separately(platform: Any, client: Any) -> None:
    device = bearer(await token_for(platform, "device"))
    t = platform.clock.now().isoformat()
    body = "\n".join(orjson.dumps({"event": "associate", "mac": mac, "hotspot_id": "wifi-surin-001", "time": t}
                                  ).decode() for mac in MACS)
    assert (await client.post("/api/v1/wifi/events", content=body, headers=device)).json()["accepted"] == 3
    await platform.wifi.flush()
    row = (await platform.wifi.store.fetch_all(text(
        "SELECT devices, randomised_devices FROM wifi_footfall_hourly WHERE hotspot_id = 'wifi-surin-001'")))[0]
    assert (row["devices"], row["randomised_devices"]) == (3, 1)     # only da:.. is locally administered
    metrics = platform.metrics.render().decode()
    assert re.search(r'citydata_wifi_events_total\{channel="http",format="jsonl",randomised="yes"\} 1\.0', metrics)
    assert re.search(r'citydata_wifi_events_total\{channel="http",format="jsonl",randomised="no"\} 2\.0', metrics)
