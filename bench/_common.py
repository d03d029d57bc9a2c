"""Shared helpers for the SensorThings benchmarks (``sta_ingest``, ``sta_query``, ``sta_peer``).

* ``Server``: ``python -m citydata serve`` in a separate process on free ports, its own data directory;
* ``Trivial``: a 10-line FastAPI app under the same uvicorn settings as the platform, in a separate process
  (``python bench/_common.py trivial PORT``), the HTTP baseline;
* ``make_token``, ``db_upgrade``, ``create_streams``: set-up through the CLI and the public API;
* ``prefill``: raw ``sqlite3`` ``executemany`` of observations into the server's file (server stopped);
* ``wrk``: drive a server with Debian's ``wrk`` (a Lua script makes every request different);
* ``internal_counters``: ``citydata_internal_total`` from ``/metrics``;
* ``Profiler``: ``py-spy record`` of a server process (``--profile``), summarised as the top frames.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
PY_SPY = shutil.which("py-spy") or "/tmp/peer-venv/bin/py-spy"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
# BENCH_SRC=DIR runs the servers and the CLI on the citydata package under DIR (e.g. a ``git archive`` of a
# commit), so a benchmark measures a fixed revision while the working tree changes; default: the working tree.
BENCH_SRC = os.environ.get("BENCH_SRC", "")
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"   # what UTCDateTime stores on SQLite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")}
    if BENCH_SRC:
        env["PYTHONPATH"] = BENCH_SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_env(data_dir: Path, *, mqtt_url: str | None = None, **extra: str) -> dict[str, str]:
    return clean_env(CITYDATA_DATA_DIR=str(data_dir), CITYDATA_LOG_LEVEL="WARNING",
                     CITYDATA_MQTT_URL=mqtt_url or f"embedded://127.0.0.1:{free_port()}", **extra)


class Server:
    """``python -m citydata serve`` in its own process."""

    def __init__(self, data_dir: Path, *, mqtt_url: str | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.mqtt_url = mqtt_url or f"embedded://127.0.0.1:{free_port()}"
        self.env = server_env(data_dir, mqtt_url=self.mqtt_url, **env)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        data_dir = self.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(data_dir / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([PY, "-m", "citydata", "serve", "--port", str(self.port)], cwd=REPO,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        started = time.perf_counter()
        wait_http(f"{self.base}/healthz", timeout=600, proc=self.proc)
        self.startup_s = time.perf_counter() - started
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
            self.log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


TRIVIAL_APP = '''
import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response
app = FastAPI()
@app.post("/echo")
async def echo(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(orjson.dumps({"id": 1, "n": len(body)}), status_code=201, media_type="application/json")
@app.get("/hello")
async def hello() -> Response:
    return Response(b'{"hello":"world"}', media_type="application/json")
'''


def serve_trivial(port: int) -> None:
    """The trivial FastAPI app under the uvicorn settings ``Platform._start_http`` uses."""
    import uvicorn

    namespace: dict[str, Any] = {}
    exec(TRIVIAL_APP, namespace)
    config = uvicorn.Config(namespace["app"], host="127.0.0.1", port=port, log_config=None, access_log=False,
                            lifespan="off", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()


class Trivial:
    """The trivial FastAPI app (``POST /echo``, ``GET /hello``) in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Trivial:
        self.proc = subprocess.Popen([PY, str(Path(__file__).resolve()), "trivial", str(self.port)], cwd=REPO,
                                     env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.base}/hello", proc=self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)


# -- set-up through the CLI and the API -------------------------------------------------------------------------
def cli(data_dir: Path, *args: str) -> str:
    out = subprocess.run([PY, "-m", "citydata", *args], cwd=REPO, env=server_env(data_dir), check=True,
                         capture_output=True, timeout=120)
    return out.stdout.decode().strip()


def make_token(data_dir: Path, role: str = "admin") -> str:
    return cli(data_dir, "tokens", "create", "--role", role, "--name", "bench").splitlines()[-1]


def db_upgrade(data_dir: Path) -> None:
    cli(data_dir, "db", "upgrade")


def create_streams(base: str, token: str, n: int, per_thing: int = 10) -> list[int]:
    """``n`` Datastreams on ``ceil(n / per_thing)`` Things (each with a Location, so a FeatureOfInterest can
    be generated), created by deep insert. Returns the Datastream ids."""
    headers = {"Authorization": f"Bearer {token}"}
    ids: list[int] = []
    with httpx.Client(base_url=f"{base}/v1.1", headers=headers, timeout=60) as client:
        made = 0
        k = 0
        while made < n:
            count = min(per_thing, n - made)
            thing = {"name": f"bench thing {k}", "description": "benchmark station",
                     "Locations": [{"name": f"loc {k}", "description": "station", "encodingType":
                                    "application/geo+json", "location": {"type": "Point", "coordinates":
                                                                         [98.3 + k / 1000, 7.9 + k / 1000]}}],
                     "Datastreams": [{"name": f"ds {k}.{j}", "description": "air temperature",
                                      "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
                                                         "OM_Measurement",
                                      "unitOfMeasurement": {"name": "degree Celsius", "symbol": "degC",
                                                            "definition": "http://unitsofmeasure.org/ucum.html"},
                                      "Sensor": {"name": f"sensor {k}.{j}", "description": "thermometer",
                                                 "encodingType": "application/pdf", "metadata": "none"},
                                      "ObservedProperty": {"name": f"temperature {k}.{j}", "description": "air",
                                                           "definition": "http://example.org/temperature"}}
                                     for j in range(count)]}
            r = client.post("/Things", json=thing)
            r.raise_for_status()
            tid = r.json()["@iot.id"]
            got = client.get(f"/Things({tid})/Datastreams", params={"$select": "id", "$top": "1000"})
            got.raise_for_status()
            ids.extend(sorted(v["@iot.id"] for v in got.json()["value"]))
            made += count
            k += 1
    return ids


def generated_fois(db_path: Path, stream_ids: Sequence[int]) -> dict[int, int]:
    """Datastream id -> FeatureOfInterest id, creating the FeatureOfInterest the platform would generate from
    the Thing's Location (so raw rows carry a real foi_id), through the API beforehand: callers post one
    observation per stream first. Streams without one map to nothing."""
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("SELECT datastream_id, max(foi_id) FROM observations GROUP BY datastream_id").fetchall()
    finally:
        con.close()
    wanted = set(stream_ids)
    return {int(d): int(f) for d, f in rows if d in wanted and f is not None}


def obs_rows(stream_ids: Sequence[int], n: int, start: datetime, step_s: int = 60,
             fois: dict[int, int] | None = None) -> Iterator[tuple[int, datetime, float, int | None]]:
    """``n`` observations, time-major across the streams (what a live city produces): (stream, time, result,
    foi). Results run from 0 to 40 (``result gt 25`` keeps about 37%)."""
    fois = fois or {}
    k = len(stream_ids)
    for i in range(n):
        sid = stream_ids[i % k]
        yield sid, start + timedelta(seconds=step_s * (i // k)), ((i * 7919) % 4000) / 100.0, fois.get(sid)


def prefill(db_path: Path, stream_ids: Sequence[int], n: int, start: datetime, step_s: int = 60,
            fois: dict[int, int] | None = None, chunk: int = 500_000) -> float:
    """Raw ``executemany`` of ``n`` observations into ``db_path`` (the server must be stopped), in chunks of
    ``chunk`` rows per transaction. Returns the seconds it took."""
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA cache_size=-262144")
    (next_id,) = con.execute("SELECT coalesce(max(id), 0) + 1 FROM observations").fetchone()
    sql = ("INSERT INTO observations (id, datastream_id, phenomenon_time, result_number, foi_id) "
           "VALUES (?, ?, ?, ?, ?)")
    started = time.perf_counter()
    k = len(stream_ids)
    fois = fois or {}
    done = 0
    while done < n:
        size = min(chunk, n - done)
        params = []
        last_step, text = -1, ""
        for i in range(done, done + size):
            step = i // k
            if step != last_step:
                text = (start + timedelta(seconds=step_s * step)).strftime(SQLITE_TIME)
                last_step = step
            sid = stream_ids[i % k]
            params.append((next_id + i, sid, text, ((i * 7919) % 4000) / 100.0, fois.get(sid)))
        con.execute("BEGIN")
        con.executemany(sql, params)
        con.execute("COMMIT")
        done += size
    # no id bookkeeping needed: the store's next id block never starts below max(id)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - started


def stream_end(stream_count: int, n: int, start: datetime, step_s: int = 60) -> datetime:
    """The first time after the last prefilled observation of any stream."""
    return start + timedelta(seconds=step_s * ((n + stream_count - 1) // stream_count))


def count_rows(db_path: Path) -> int:
    con = sqlite3.connect(db_path)
    try:
        return int(con.execute("SELECT count(*) FROM observations").fetchone()[0])
    finally:
        con.close()


# -- load generation --------------------------------------------------------------------------------------------
def wrk(url: str, lua: str, *, connections: int, seconds: float, threads: int = 1) -> dict[str, Any]:
    """Run ``wrk`` with the Lua script ``lua``; returns req/s, non-2xx count and latencies (ms)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
                              "--latency", "-s", script, url], capture_output=True, text=True, check=True,
                             timeout=seconds + 60).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = {p: _ms(m.group(1)) for p in ("50%", "99%") if (m := re.search(rf"\s{p}\s+([\d.]+\w+)", out))}
    return {"rps": rps, "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "", "p50_ms": lat.get("50%"), "p99_ms": lat.get("99%")}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def lua_get(paths: Sequence[str], headers: dict[str, str] | None = None) -> str:
    """A wrk script cycling through ``paths`` (already URL-encoded)."""
    items = ",".join(json.dumps(p) for p in paths)
    hdr = "".join(f'wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n' for k, v in (headers or {}).items())
    return (f"{hdr}local paths = {{{items}}}\nlocal i = 0\n"
            "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")


def internal_counters(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'citydata_internal_total\{name="([^"]+)"\} ([\d.e+]+)', text)}


def rows_per_commit(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    commits = after.get("store_commits", 0) - before.get("store_commits", 0)
    rows = after.get("store_rows", 0) - before.get("store_rows", 0)
    return {"commits": commits, "rows": rows, "rows_per_commit": rows / commits if commits else 0.0}


# -- profiling ---------------------------------------------------------------------------------------------------
class Profiler:
    """``py-spy record`` of one process while a phase runs (``--profile``): the top frames, inclusive and self."""

    def __init__(self, pid: int, out: Path, enabled: bool, rate: int = 250) -> None:
        self.pid, self.out, self.enabled, self.rate = pid, out, enabled and Path(PY_SPY).exists(), rate
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        if self.enabled:
            self.proc = subprocess.Popen([PY_SPY, "record", "--pid", str(self.pid), "--format", "raw",
                                          "--rate", str(self.rate), "--gil", "-o", str(self.out)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)

    def summary(self, top: int = 25) -> dict[str, Any]:
        """Inclusive: share of the event loop thread's busy samples (idle in ``select`` left out) per function,
        generic frames (asyncio, typer, runpy) left out. Self: share of all busy samples (every thread) per
        line. ``loop_busy``/``other_busy``: busy samples of the loop thread and of the other threads (the
        driver's worker threads), as a share of all samples."""
        if not self.enabled or not self.out.exists():
            return {}
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        total = loop_busy = other_busy = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = [re.sub(r"\s*\(/.*?([^/]+/[^/]+\.py):(\d+)\)", r" (\1:\2)", f) for f in stack.split(";")]
            leaf = frames[-1]
            if IDLE.search(leaf):
                continue
            own[leaf] += n
            if any("run_forever" in f for f in frames):
                loop_busy += n
                for name in {re.sub(r":\d+\)$", ")", f) for f in frames}:
                    if not GENERIC.search(name):
                        inclusive[name] += n
            else:
                other_busy += n
        busy = loop_busy + other_busy
        if not total or not busy:
            return {}
        return {"samples": total, "loop_busy": round(100 * loop_busy / total, 1),
                "other_busy": round(100 * other_busy / total, 1),
                "inclusive": [(k, round(100 * v / max(loop_busy, 1), 1)) for k, v in inclusive.most_common(top)],
                "self": [(k, round(100 * v / busy, 1)) for k, v in own.most_common(top)]}


IDLE = re.compile(r"^(EpollSelector\.select|select|Condition\.wait|_connection_worker_thread \(aiosqlite/core\.py:59\)"
                  r"|Thread\._wait_for_tstate_lock|Queue\.get|_worker \(concurrent)")
GENERIC = re.compile(r"typer/|_click/|runpy|asyncio/|cli/|citydata/__main__|uvicorn/server\.py|Handle\._run")


def print_profile(title: str, summary: dict[str, Any], top: int = 18) -> None:
    if not summary:
        return
    print(f"\n  profile: {title}: event loop thread busy {summary['loop_busy']}% of samples, other threads busy "
          f"{summary['other_busy']}%")
    for kind, what in (("inclusive", "inclusive, % of the loop thread's busy samples"),
                       ("self", "self, % of all busy samples")):
        print(f"    {what}:")
        for name, pct in summary[kind][:top]:
            print(f"      {pct:5.1f}%  {name}")


# -- output ------------------------------------------------------------------------------------------------------
def verdict(ratio: float, goal: float) -> str:
    if ratio >= goal:
        return f"meets >= {goal:g}"
    return f"MISSES >= {goal:g} by {100 * (1 - ratio / goal):.0f}% (x{goal / ratio:.1f} short)"


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "trivial":
        serve_trivial(int(sys.argv[2]))
    else:
        sys.exit("usage: _common.py trivial PORT")
