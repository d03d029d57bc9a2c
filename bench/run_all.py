#!/usr/bin/env python3
"""Run every benchmark, write BENCHMARKS.md (command, machine, date, ratios) and keep the history as JSON.

    make bench                                  # everything, full size
    .venv/bin/python bench/run_all.py --quick   # scaled-down runs
    .venv/bin/python bench/run_all.py --only store_write bus_throughput

Each benchmark is a script in bench/ that accepts ``--json OUT``. Its figures are summarised here as rows of
(metric, ours, baseline, ratio, goal); a script may also put such rows itself under a top-level ``summary`` key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HISTORY = BENCH / "history.json"
Row = dict[str, Any]


def _store_write(d: dict[str, Any]) -> list[Row]:
    rows = []
    for backend, raw in (("sqlite", "raw sqlite3 executemany, one transaction"),
                         ("postgresql", "raw asyncpg copy_records_to_table")):
        if backend in d:
            b = d[backend]
            rows.append({"metric": f"store write path, {backend} (obs/s)", "ours": b["ours"]["rows_per_s"],
                         "baseline": b["raw"]["rows_per_s"], "baseline_name": raw, "ratio": b["ratio"],
                         "goal": ">= 0.5", "note": f"{b['ours']['rows_per_commit']:.0f} rows per commit"})
    return rows


def _bus(d: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("memory", "memory+sqlite", "nats"):
        figures = d.get(name)
        if not figures:
            continue
        for mode in ("batched", "single", "batched_sync_offsets"):
            if mode in figures:
                f = figures[mode]
                rows.append({"metric": f"bus {name}, {mode}: publish to consumer (events/s)",
                             "ours": f["events_per_s"], "note": f"{f['events']} events"})
    nats = d.get("nats")
    if nats:
        rows.append({"metric": "NATS JetStream bus vs raw nats-py (events/s)", "ours": nats["batched"]["events_per_s"],
                     "baseline": nats["raw"]["events_per_s"], "baseline_name": "raw nats-py JetStream publish + pull",
                     "ratio": nats["ratio"], "note": "ours includes event (de)serialisation"})
    return rows


def _sta_ingest(d: dict[str, Any]) -> list[Row]:
    a, b, dd = d["a"], d["b"], d["d"]
    rows = [
        {"metric": "(a) single POST /v1.1/Observations (req/s)", "ours": a["ours"]["rps"],
         "baseline": a["trivial"]["rps"], "baseline_name": "trivial FastAPI JSON POST", "ratio": a["ratio"],
         "goal": ">= 0.25", "note": f"p50 {a['ours']['p50_ms']:.0f} ms, p99 {a['ours']['p99_ms']:.0f} ms"},
        {"metric": "(b) CreateObservations, 1,000 per POST (obs/s)", "ours": b["ours"]["obs_per_s"],
         "baseline": b["raw"]["obs_per_s"], "baseline_name": "raw sqlite3 executemany", "ratio": b["ratio_raw"],
         "goal": ">= 0.3", "note": f"{b['ratio_single']:.1f} x (a) (goal >= 20)"},
        {"metric": f"(d) (b) with {dd['rows_stored']['rows_total']:,} rows stored (obs/s)", "ours": dd["full"],
         "baseline": dd["empty"], "baseline_name": "(b) on a near-empty table", "ratio": dd["ratio"],
         "goal": ">= 0.7", "note": ""},
        {"metric": "rows per commit under load, (a) / (b)", "ours": d["rows_per_commit"]["a"],
         "baseline": d["rows_per_commit"]["b"], "goal": ">= 50", "note": "ours = (a), baseline column = (b)"},
    ]
    return rows


def _sta_query(d: dict[str, Any]) -> list[Row]:
    rows = [{"metric": f"{q['name']} (req/s)", "ours": q["api"]["rps"], "baseline": q["sql"]["qps"],
             "baseline_name": "hand-written SQL, same driver", "ratio": q["ratio"], "goal": ">= 0.5",
             "note": f"vs floor (trivial GET + SQL) {q['ratio_floor']:.2f}"} for q in d["queries"]]
    rows.append({"metric": "Observations $top=100 vs a trivial GET", "ours": None, "baseline": d["trivial_get"]["rps"],
                 "baseline_name": "trivial FastAPI GET", "ratio": d["top100_vs_trivial"], "goal": ">= 0.1",
                 "note": f"{d['prefill']['rows_total']:,} observations stored"})
    return rows


def _sta_peer(d: dict[str, Any]) -> list[Row]:
    if "ours" not in d:
        return [{"metric": "peer comparison", "note": str(d.get("error", "peer did not run"))}]
    return [
        {"metric": "single POST Observation (req/s)", "ours": d["ours"]["post"]["rps"],
         "baseline": d["peer"]["post"]["rps"], "baseline_name": "django-ogc-sensorthings, same machine",
         "ratio": d["ratio_post"], "goal": ">= 10"},
        {"metric": "GET Observations?$top=100 (req/s)", "ours": d["ours"]["top100"]["rps"],
         "baseline": d["peer"]["top100"]["rps"], "baseline_name": "django-ogc-sensorthings, same machine",
         "ratio": d["ratio_top100"], "goal": ">= 10"},
    ]


# name -> (script args (full), script args (quick), summariser)
BENCHMARKS: dict[str, tuple[list[str], list[str], Callable[[dict[str, Any]], list[Row]]]] = {
    "store_write": (["bench/store_write.py"], ["bench/store_write.py", "--rows", "20000", "--repeat", "1"],
                    _store_write),
    "bus_throughput": (["bench/bus_throughput.py"], ["bench/bus_throughput.py", "--events", "5000"], _bus),
    "sta_ingest": (["bench/sta_ingest.py"], ["bench/sta_ingest.py", "--quick"], _sta_ingest),
    "sta_query": (["bench/sta_query.py"], ["bench/sta_query.py", "--quick"], _sta_query),
    "sta_peer": (["bench/sta_peer.py"], ["bench/sta_peer.py", "--quick"], _sta_peer),
    "rules": (["bench/rules.py"], ["bench/rules.py", "--events", "10000"], lambda d: d["summary"]),
    "geofence": (["bench/geofence.py"], ["bench/geofence.py", "--quick"], lambda d: d["summary"]),
    "footfall": (["bench/footfall.py"], ["bench/footfall.py", "--quick"], lambda d: d["summary"]),
    "opendata": (["bench/opendata.py"], ["bench/opendata.py", "--quick"], lambda d: d["summary"]),
    "mqtt_latency": (["bench/mqtt_latency.py"], ["bench/mqtt_latency.py", "--quick"], lambda d: d["summary"]),
    "vision": (["bench/vision.py"], ["bench/vision.py", "--quick"], lambda d: d["summary"]),
    "plates_accuracy": (["bench/plates_accuracy.py"], ["bench/plates_accuracy.py", "--quick"], lambda d: d["summary"]),
    "crash": (["bench/crash.py"], ["bench/crash.py", "--kills", "5"], lambda d: d["summary"]),
    "load": (["bench/load.py"], ["bench/load.py", "--duration", "60"], lambda d: d["summary"]),
    "scale_out": (["bench/scale_out.py"], ["bench/scale_out.py", "--quick"], lambda d: d["summary"]),
}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}"}


def run(name: str, quick: bool) -> dict[str, Any]:
    full, small, summarise = BENCHMARKS[name]
    args = small if quick else full
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, *args, "--json", str(out)]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        record: dict[str, Any] = {"name": name, "command": " ".join([".venv/bin/python", *args]),
                                  "seconds": round(seconds, 1), "returncode": proc.returncode,
                                  "mode": "quick" if quick else "full",
                                  "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        if proc.returncode != 0 or not out.exists():
            record["error"] = (proc.stderr or proc.stdout)[-2000:]
            return record
        data = json.loads(out.read_text())
    record["data"] = data
    record["rows"] = data.get("summary") or summarise(data)
    record["output"] = proc.stdout[-4000:]
    return record


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def write_markdown(results: list[dict[str, Any]], meta: dict[str, Any], history_path: Path) -> str:
    lines = ["# Benchmarks", "",
             "Produced by `make bench` (`.venv/bin/python bench/run_all.py`); each benchmark's own command is "
             "given below, and its full output is in the history (`bench/history.json`). Every ratio compares our "
             "path with the raw engine (or a bare client) measured in the same run on the same machine.", "",
             f"- date: {meta['date']}", f"- machine: {meta['machine']['cpus']} CPUs, {meta['machine']['cpu']}, "
             f"{meta['machine']['system']}, Python {meta['machine']['python']}",
             "- each section says when it last ran and whether full size or `--quick` (scaled down)", ""]
    for r in results:
        lines += [f"## {r['name']}", "", f"Command: `{r['command']}` ({r['seconds']} s, {r.get('mode', 'full')} "
                                         f"run of {r.get('date', meta['date'])})", ""]
        if "error" in r:
            lines += ["**Failed:**", "", "```", r["error"].strip(), "```", ""]
            continue
        lines += ["| metric | ours | baseline | ratio | goal | note |", "| --- | --- | --- | --- | --- | --- |"]
        for row in r["rows"]:
            base = fmt(row.get("baseline"))
            if row.get("baseline_name"):
                base = f"{base} ({row['baseline_name']})"
            lines.append(f"| {row['metric']} | {fmt(row.get('ours'))} | {base} | {fmt(row.get('ratio'))} | "
                         f"{row.get('goal', '')} | {row.get('note', '')} |")
        lines.append("")
    extra = BENCH / "NOTES.md"
    if extra.exists():
        lines += [extra.read_text().strip(), ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="scaled-down runs")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    results = []
    for name in names:
        print(f"running {name} ...", flush=True)
        results.append(run(name, args.quick))
        print(f"  done in {results[-1]['seconds']} s", flush=True)
    meta = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
            "quick": args.quick}
    history = json.loads(HISTORY.read_text()) if HISTORY.exists() else []
    history.append({**meta, "results": [{k: v for k, v in r.items() if k != "output"} for r in results]})
    HISTORY.write_text(json.dumps(history, indent=1, default=str) + "\n")
    # BENCHMARKS.md shows the latest run of every benchmark (a partial run keeps the others' last figures)
    latest: dict[str, dict[str, Any]] = {}
    for entry in history:
        for r in entry["results"]:
            latest[r["name"]] = {"date": entry["date"], "mode": "quick" if entry.get("quick") else "full", **r}
    ordered = [latest[n] for n in BENCHMARKS if n in latest]
    args.output.write_text(write_markdown(ordered, meta, HISTORY))
    failed = [r["name"] for r in results if "error" in r]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
