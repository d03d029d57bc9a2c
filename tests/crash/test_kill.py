"""Crash test: the server SIGKILLed at random points while clients ingest over HTTP and MQTT QoS 1.

Three kills per backend here (``bench/crash.py`` runs twenty). After the last restart the clients finish
what they had in flight and the rows are counted in the database: nothing acknowledged is missing, nothing is
stored twice, nothing is stored that was never sent. See ``tests/crash/harness.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.harness import run_crash

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

KILLS = 3


async def test_sigkill_loses_and_duplicates_nothing_on_sqlite(tmp_path: Path) -> None:
    result = await run_crash(tmp_path / "run", kills=KILLS, min_up_s=0.5, max_up_s=2.0)
    summary = result.summary()
    assert result.ok(), summary
    assert result.kills == KILLS and len(result.restart_s) == KILLS
    # the clients really ingested on both channels, and some sends were cut off by the kills
    assert len(result.http.acked) >= 20 and len(result.mqtt.acked) >= 20, summary
    assert result.stored_http == len(result.http.acked) and result.stored_mqtt == len(result.mqtt.acked)


async def test_sigkill_loses_and_duplicates_nothing_on_postgresql(tmp_path: Path, pg_url: str,
                                                                  pg_schema: str) -> None:
    result = await run_crash(tmp_path / "run", kills=KILLS, db_url=pg_url, db_schema=pg_schema,
                             min_up_s=0.5, max_up_s=2.0)
    summary = result.summary()
    assert result.ok(), summary
    assert result.backend == "postgresql" and len(result.restart_s) == KILLS
    assert len(result.http.acked) >= 20 and len(result.mqtt.acked) >= 20, summary
    assert result.stored_http == len(result.http.acked) and result.stored_mqtt == len(result.mqtt.acked)
