"""kill -9 in the middle of windows while events flow: after restarts, every expected alert transition is in
the journal exactly once (none lost, none twice)."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.rules.crash_worker import expected

REPO = Path(__file__).resolve().parents[2]
TOTAL = 3000


def _start(data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "rules" / "crash_worker.py"), str(data_dir),
                             str(TOTAL)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=REPO)


def _journal(db: Path, kinds: tuple[str, ...]) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT kind, key, data FROM events WHERE kind IN ({','.join('?' * len(kinds))}) "
                            "ORDER BY seq", kinds).fetchall()
    import json

    return [(k, key, _instant(json.loads(d)["observed_at"])) for k, key, d in rows]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _observations(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM events WHERE kind = 'observation.received'").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_kill9_mid_window_loses_no_alert_and_raises_none_twice(tmp_path: Path) -> None:
    rng = random.Random(7)
    data_dir = tmp_path / "data"
    db = data_dir / "citydata.db"
    kills = 0
    for _ in range(3):
        proc = _start(data_dir)
        assert proc.stdout is not None
        line = proc.stdout.readline()                      # START n: the worker is consuming and publishing
        assert line.startswith("START"), proc.stderr.read() if proc.stderr else line
        before = _observations(db)
        time.sleep(rng.uniform(0.3, 0.9))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(30)
        assert _observations(db) >= before
    assert kills >= 2
    assert 0 < _observations(db) < TOTAL, "the kills must land while events flow"

    proc = _start(data_dir)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "DONE" in out

    want_raw, leaves = expected(TOTAL)
    want = [(k, key, _instant(at)) for k, key, at in want_raw]
    got = _journal(db, ("alert.raised", "alert.cleared"))
    assert len(want) > 10
    assert collections.Counter(got) == collections.Counter(want)
    # and in the same order per dedup key
    for key in {k for _, k, _ in want}:
        assert [g for g in got if g[1] == key] == [w for w in want if w[1] == key]
    # the windows and hysteresis restored and continued hold exactly what an uninterrupted run holds
    import json

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rule_id, instance, state FROM rule_instances").fetchall()
    assert {(r, i): json.loads(s)["l"] for r, i, s in rows} == leaves
