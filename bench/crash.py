"""Crash run: ``citydata serve`` SIGKILLed 20 times at random points while clients ingest over HTTP (4 senders)
and MQTT QoS 1 (embedded broker, 8 in flight), on SQLite and on PostgreSQL; then the rows are counted.

Pass: missing = duplicated = unexpected = 0 (every acknowledged Observation stored exactly once, nothing that was
not sent). The harness is ``tests/crash/harness.py`` (the same code runs with 3 kills in ``make test``).
There is no raw-engine ratio for this run: its figures are counts, plus the restart time after a SIGKILL.

    .venv/bin/python bench/crash.py [--kills 20] [--backend sqlite postgresql] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.crash.harness import run_crash  # noqa: E402

PG_URL = os.environ.get("CITYDATA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"kills": args.kills, "runs": []}
    rows = []
    for backend in args.backend:
        with tempfile.TemporaryDirectory(prefix="citydata-crash-") as tmp:
            schema = f"crash_{uuid.uuid4().hex[:10]}" if backend == "postgresql" else None
            try:
                result = await run_crash(Path(tmp), kills=args.kills, seed=args.seed,
                                         db_url=PG_URL if backend == "postgresql" else None, db_schema=schema,
                                         min_up_s=args.min_up, max_up_s=args.max_up)
            finally:
                if schema:
                    await _drop_schema(schema)
        s = result.summary()
        print(json.dumps(s), flush=True)
        out["runs"].append(s)
        rows.append({"metric": f"{backend}: {s['kills']} SIGKILLs, acknowledged observations (HTTP + MQTT)",
                     "ours": s["http_acked"] + s["mqtt_acked"],
                     "note": f"missing {s['missing']}, duplicated {s['duplicated']}, unexpected {s['unexpected']}; "
                             f"{s['http_resent'] + s['mqtt_resent']} re-sends after cut-offs; median restart "
                             f"{s['restart_s_median']} s; {s['seconds']} s", "goal": "0 missing, 0 duplicated"})
    out["summary"] = rows
    out["ok"] = all(r["missing"] == 0 and r["duplicated"] == 0 and r["unexpected"] == 0 for r in out["runs"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--min-up", type=float, default=0.5, help="least seconds of ingest before a kill")
    parser.add_argument("--max-up", type=float, default=4.0, help="most seconds of ingest before a kill")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
