"""``citydata import dataset`` and ``citydata datasets list|show`` against a real SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from citydata.cli.main import app


def test_import_dataset_cli(tmp_path: Path) -> None:
    env = {"CITYDATA_DATA_DIR": str(tmp_path / "data"), "CITYDATA_MQTT_URL": "none://"}
    bad = tmp_path / "arrivals.csv"
    bad.write_text("month,province_code,arrivals\n2024-01,83,100\n2024-02,83,12o\n2024-03,99,5\n",
                   encoding="utf-8")
    args = ["import", "dataset", str(bad), "--as", "arrivals", "--code", "province_code", "--level", "province",
            "--type", "arrivals=integer", "--type", "province_code=text"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 3, result.output
    assert "arrivals.csv:3: arrivals: '12o' is not a valid integer" in result.stderr
    assert "arrivals.csv:4: unknown area code '99'" in result.stderr
    assert "nothing imported" in result.stdout

    result = CliRunner().invoke(app, [*args, "--allow-rejected"], env=env)
    assert result.exit_code == 3 and "arrivals version 1: 1 rows imported, 2 rejected" in result.stdout

    result = CliRunner().invoke(app, ["import", "dataset", "--samples"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("rows imported, 0 rejected") == 4

    result = CliRunner().invoke(app, ["datasets", "list"], env=env)
    assert result.exit_code == 0 and "hotel_register\tv1\t117 rows" in result.stdout
    result = CliRunner().invoke(app, ["datasets", "show", "arrivals"], env=env)
    shown = json.loads(result.stdout)
    assert shown["geo"] == {"by": "code", "columns": ["province_code"], "level": "province"}
    assert [r["line"] for r in shown["rejections"]] == [3, 4]

    result = CliRunner().invoke(app, ["import", "dataset", str(bad), "--as", "x", "--type", "arrivals"], env=env)
    assert result.exit_code == 2 and "COLUMN=TYPE" in result.stderr
