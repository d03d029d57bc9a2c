"""No personal data in the logs, the open data or the metrics after the simulator has driven a real server.

``citydata serve`` (a subprocess, its log captured) is driven by ``citydata simulate`` (tourists arriving with
names and passport numbers, WiFi sessions with real-looking MACs, CCTV frames with Thai plates and faces,
tourist reports with exact positions); then the scanner in ``tests/security/pii.py`` reads the server's log, the
open data (CKAN actions, DCAT, every dataset as CSV and GeoJSON) and ``/metrics``.

In ``make test`` the simulation runs ``CITYDATA_PII_SIM_S`` real seconds (default 60: 30 simulated minutes at
the simulator's 30x for people); the full simulated day is ``CITYDATA_PII_SIM_S=2880``.
"""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.conftest import CLI, Server, run_cli
from tests.security.pii import Finding, scan

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(4000)]

SIM_S = float(os.environ.get("CITYDATA_PII_SIM_S", "60"))


def test_the_scanner_finds_planted_personal_data() -> None:
    text = ('arrival of Sim Tourist 12 passport SIM0000012 at {"lat": 7.8961234, "lon": 98.2961234} '
            "tourist position lat=7.8912345; mac 3C-22-FB-12-34-56 and 3c22.fb12.3456; plate กข 1234")
    kinds = sorted({f.kind for f in scan(text, "planted")})
    assert kinds == ["mac", "name", "passport", "person_position", "plate"]
    assert scan("hotspot ap 00:11:22:33:44:55 lat 7.89612", "x", allowed=["00:11:22:33:44:55"]) == []
    assert scan("a sha256 3c22fb12345600aa and 2026-11-21T10:15:01.123456+07:00 and v1.1/Things(1)", "x") == []
    assert scan("ย้อนหลัง 30 วัน", "x") == []          # a Thai word then a number is no plate
    assert [f.kind for f in scan("plate 1กก 234 seen", "x")] == ["plate"]


def _open_data(http: httpx.Client) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in ("/api/3/action/package_list", "/api/v1/opendata/catalog.jsonld", "/api/3/action/status_show"):
        r = http.get(path)
        out[path] = r.text
    names = http.get("/api/3/action/package_list").json().get("result", [])
    for name in names:
        out[f"package_show {name}"] = http.get("/api/3/action/package_show", params={"id": name}).text
        for fmt in ("csv", "geojson"):
            r = http.get(f"/api/v1/opendata/datasets/{name}.{fmt}")
            if r.status_code == 200:
                out[f"{name}.{fmt}"] = r.text
    return out


def test_a_simulated_day_leaves_no_personal_data_in_logs_open_data_or_metrics(server: Server) -> None:
    token = run_cli(["tokens", "create", "--role", "admin", "--name", "sim"], server.env).stdout.strip()
    sim = subprocess.run([*CLI, "simulate", "--url", server.url, "--token", token, "--speed", "60",
                          "--duration", str(SIM_S)], env=server.env, cwd=REPO, capture_output=True, text=True,
                         timeout=SIM_S + 600, check=False)
    assert sim.returncode == 0, sim.stderr[-2000:]
    sent = sim.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        # the simulation really carried personal data in: arrivals with identities were stored
        positions = http.get("/api/v1/tracking/positions")
        sources = _open_data(http)
        sources["/metrics"] = http.get("/metrics").text
        hotspot_macs = [h["ap_mac"] for h in http.get("/api/v1/wifi/hotspots", params={"limit": 1000})
                        .json().get("items", []) if h.get("ap_mac")]
    log_path = server.data_dir.parent / "server.log"
    sources["server.log"] = log_path.read_text(errors="replace") if log_path.exists() else ""
    assert sources["server.log"], "the server log is empty: nothing was scanned"
    findings: list[Finding] = []
    for name, text in sources.items():
        findings.extend(scan(text, name, allowed=hotspot_macs))
    report = "\n".join(f"{f.source}: {f.kind} {f.match!r} in ...{f.context}..." for f in findings[:20])
    assert not findings, f"{len(findings)} personal data findings (simulator: {sent}):\n{report}"
    assert positions.status_code == 200 and positions.json(), "no traveller arrived: the scan proves nothing"
