"""``citydata wifi import`` (a FreeRADIUS detail file, JSON lines) and ``citydata wifi rebuild``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from citydata.cli.wifi import app


def test_import_detail_and_lines_then_rebuild(tmp_path: Path) -> None:
    env = {"CITYDATA_DATA_DIR": str(tmp_path / "data"), "CITYDATA_MQTT_URL": "none://"}
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    stamp = start.astimezone().strftime("%a %b %d %H:%M:%S %Y")
    detail = tmp_path / "detail-20261121"
    detail.write_text(
        f"{stamp}\n\tAcct-Status-Type = Start\n\tCalling-Station-Id = \"3C-22-FB-00-00-01\"\n"
        f"\tNAS-Identifier = \"wifi-rawai-001\"\n\tAcct-Session-Id = \"D1\"\n"
        f"\tEvent-Timestamp = \"{start.isoformat()}\"\n\n"
        f"{stamp}\n\tAcct-Status-Type = Stop\n\tCalling-Station-Id = \"3C-22-FB-00-00-01\"\n"
        f"\tNAS-Identifier = \"wifi-rawai-001\"\n\tAcct-Session-Id = \"D1\"\n\tAcct-Session-Time = 900\n"
        f"\tEvent-Timestamp = \"{(start + timedelta(seconds=900)).isoformat()}\"\n\n"
        f"{stamp}\n\tAcct-Status-Type = Accounting-On\n\tNAS-Identifier = \"wifi-rawai-001\"\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(detail), "--format", "detail"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert (out["accepted"], out["rejected"]) == (2, 1) and out["hours_rebuilt"] >= 1 and out["days_rebuilt"] >= 1

    lines = tmp_path / "hostapd.log"
    t = start.isoformat()
    lines.write_text(f"<30>1 {t} wifi-rawai-002 hostapd - - - wlan0: AP-STA-CONNECTED 3a:22:fb:00:00:02\n"
                     f"<30>1 {t} wifi-rawai-002 sshd - - - noise\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(lines), "--format", "syslog"], env=env)
    out = json.loads(result.output.strip().splitlines()[-1])
    assert (out["accepted"], out["rejected"]) == (1, 1) and out["hours_rebuilt"] >= 1

    result = CliRunner().invoke(app, ["rebuild", "--from", (start - timedelta(hours=1)).isoformat(),
                                      "--to", (start + timedelta(hours=2)).isoformat()], env=env)
    assert result.exit_code == 0 and json.loads(result.output)["hours_rebuilt"] == 3

    result = CliRunner().invoke(app, ["import", str(lines), "--format", "telnet"], env=env)
    assert result.exit_code != 0 and "unknown format" in result.output
    result = CliRunner().invoke(app, ["rebuild", "--from", "2026-11-01T00:00:00", "--to", "2026-11-02T00:00:00"],
                                env=env)
    assert result.exit_code != 0 and "time zone" in result.output
