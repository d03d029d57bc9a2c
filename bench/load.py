"""Load: every feed at once at 10 x the Phuket peak, against one ``citydata serve`` (SQLite, embedded MQTT).

Issue 8 asks for "10x Phuket peak across every feed at once, for 10 minutes on one machine: sensors, tourist
reports, WiFi, and CCTV events", with the Phuket peak at "about 170 tourist reports per second at peak, a few
hundred sensors, and 1,000 hotspots", and the tourist app "reports its position every 30 minutes": 170/s x
1,800 s is about 306,000 tourists, Phuket's peak population. So the 170/s "tourist reports" are the app's
position reports (tracking pings), 1,700/s at 10 x; tourist *problem* reports (each of which raises an IOC
alert) are a few per second at most in a real city. Feeds and their target rates at ``--scale 1`` (10 x peak;
the peak figures are in docs/durability.md):

* sensors over MQTT: SensorThings Observations, QoS 1 on the embedded broker (PUBACK after the commit), 150/s
  spread over the Datastreams;
* sensors over HTTP: single ``POST /v1.1/Datastreams(id)/Observations``, 150/s;
* tourist position pings, 1,700/s, through the app flow of the simulator (``citydata.sim.tourists``): in the
  setup, ``--travellers`` (3,000) arrivals are registered at a checkpoint with an immigration token
  (``POST /api/v1/tracking/arrivals``) and enrolled (``POST /api/v1/tracking/enrol`` with the code); during
  the load they take turns to ``POST /api/v1/tracking/pings`` one fix with their device token: never two of a
  traveller's pings in flight at once, fix times (the wall clock) increasing per traveller, positions around
  the beaches, hotels and sights moving at walking pace, and 3% of them driving north over the Sarasin bridge
  into Phang Nga at 54 km/h, so the province geofence confirms exits (dwell shortened to 60 s for the run).
  A real phone pings every 30 minutes, so 306,000 device tokens would take turns where 3,000 do here; the
  server's token cache (400,000 entries, idle expiry after an hour, revocations fed every 5 s) holds both;
* tourist problem reports: ``POST /api/v1/reports`` (text, category, location; no photo), 2/s, so that path
  (and the alert each raises) is exercised at a realistic rate;
* WiFi: ``POST /api/v1/wifi/events`` with JSON lines, 100 lines a request, 2,000 lines/s over the 1,000
  shipped hotspots (random MACs, pseudonymised by the platform);
* CCTV: vendor edge-analytics events ``POST /api/v1/vision/vendor/acme`` (red-light and wrong-way crossings and
  plates) from 50 registered cameras, 50/s (a replay of generated events).

Each feed is an open-loop sender: requests are started at the target rate, at most ``--inflight`` at a time per
feed; a request that cannot start because the feed already has that many in flight is counted as
``not_sent`` (the client fell behind: the server did not keep up). The report gives, per feed, the achieved
rate, p50/p99/p999 latency, the rejects (429/503, counted, with Retry-After), and other errors; every second the
server's CPU and RSS (psutil), its queue depths (``citydata_queue_depth`` in ``/metrics``) and each feed's
answered units, plotted as a PNG (the throughput as a 10 s moving mean, as a share of the feed's target).

The load generator runs in this process, on the same machine: on 2 shared cores it takes CPU from the server.
It speaks HTTP/1.1 itself (``RawHTTP``: keep-alive connections on asyncio streams, responses parsed by
httptools, a free connection taken in O(1)): with httpx's pool, which scans every pooled connection (and asks the
kernel about each socket) for every request, the generator spent 80% of its CPU there and measured its own
backlog (seconds of "latency" while the server's event loop sat idle 56% of the time).

    .venv/bin/python bench/load.py [--duration 600] [--scale 1.0] [--travellers 3000] [--png bench/load.png]
        [--json OUT] [--feeds pings,wifi_lines] [--profile OUT.txt (py-spy on PATH)] [--server-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httptools
import httpx
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Profiler, Server, create_streams, make_token, print_profile, write_json
from citydata.sim.tourists import SARASIN_EXIT, SIGHTS, STAYS, TouristModel

FEEDS = {"mqtt_sensors": 150.0, "http_sensors": 150.0, "pings": 1700.0, "reports": 2.0, "wifi_lines": 2000.0,
         "cctv": 50.0}
LEAVING_SHARE = 0.03   # of the travellers drive north over the Sarasin bridge into Phang Nga during the run
DRIVE_M_S = 15.0       # their speed (54 km/h); the others walk around their beach, hotel or sight
WALK_M_S = 1.4
M_PER_DEG = 111_195.0
WIFI_BATCH = 100
KEEP_ALIVE_S = 4.0     # reuse an idle connection only this long (uvicorn closes them after 5 s)
CATEGORIES = ["safety", "crime", "lost", "scam", "road", "flooding", "other"]


@dataclass
class Feed:
    name: str
    rate: float                       # units per second (requests, or WiFi lines)
    unit_per_request: int = 1
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    rejected: int = 0                 # 429 / 503
    errors: int = 0
    not_sent: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

        return {"target_per_s": self.rate, "achieved_per_s": round(self.ok * self.unit_per_request / seconds, 1),
                "requests_ok": self.ok, "rejected_429_503": self.rejected, "errors": self.errors,
                "not_sent_client_behind": self.not_sent, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "p999_ms": pct(0.999), "codes": self.codes, "first_error": self.first_error[:300]}


async def _paced(feed: Feed, stop: asyncio.Event, inflight_max: int, make: Callable[[], Awaitable[int]]) -> None:
    """Start ``make()`` at ``feed.rate / unit_per_request`` per second, at most ``inflight_max`` at a time."""
    interval = feed.unit_per_request / feed.rate
    inflight: set[asyncio.Task[None]] = set()

    async def one() -> None:
        started = time.perf_counter()
        try:
            status = await make()
        except Exception as err:   # a dropped connection, a timeout: counted, not hidden
            feed.errors += 1
            feed.first_error = feed.first_error or f"{type(err).__name__}: {err}"
            return
        feed.codes[str(status)] = feed.codes.get(str(status), 0) + 1
        if status in (429, 503):
            feed.rejected += 1
        elif status < 300:
            feed.ok += 1
            feed.latencies.append(time.perf_counter() - started)
        else:
            feed.errors += 1
            feed.first_error = feed.first_error or f"HTTP {status}"

    next_at = time.perf_counter()
    while not stop.is_set():
        now = time.perf_counter()
        while next_at <= now:
            if len(inflight) >= inflight_max:
                feed.not_sent += 1
            else:
                task = asyncio.create_task(one())
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            next_at += interval
        await asyncio.sleep(max(0.0, min(next_at - time.perf_counter(), 0.05)))
    if inflight:
        await asyncio.wait(inflight, timeout=30)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.complete = False
        self.keep_alive = False
        self.body: list[bytes] = []
        self.last_used = time.monotonic()
        self.parser = httptools.HttpResponseParser(self)

    def on_headers_complete(self) -> None:   # httptools callbacks
        self.keep_alive = self.parser.should_keep_alive()   # (after the message it always says False)

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.complete = True

    async def request(self, head: bytes, body: bytes) -> tuple[int, bool]:
        self.complete = False
        self.body = []
        self.writer.write(head + body)
        while not self.complete:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed_data(data)
        return self.parser.get_status_code(), self.keep_alive

    def close(self) -> None:
        self.writer.close()


class RawHTTP:
    """A minimal HTTP/1.1 client for the load: keep-alive connections reused LIFO, each carrying one request
    at a time; a request that finds none idle opens one (the feed's ``--inflight`` bounds how many)."""

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.idle: list[_Conn] = []
        self.opened = 0

    async def post(self, path: str, body: bytes, content_type: str = "application/json", *,
                   extra: str = "", answer: list[bytes] | None = None) -> int:
        """POST ``body``; ``extra`` is more header lines (``Name: value\\r\\n``); the response body goes into
        ``answer`` when one is given."""
        head = (f"POST {path} HTTP/1.1\r\n{self.fixed}{extra}Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        conn = None
        while self.idle and conn is None:
            conn = self.idle.pop()
            if time.monotonic() - conn.last_used > KEEP_ALIVE_S:   # the server may be closing it
                conn.close()
                conn = None
        if conn is None:
            conn = _Conn(*await asyncio.open_connection(self.host, self.port))
            self.opened += 1
        try:
            async with asyncio.timeout(self.timeout):
                status, keep = await conn.request(head, body)
                if answer is not None:
                    answer.extend(conn.body)
        except BaseException:
            conn.close()
            raise
        if keep:
            conn.last_used = time.monotonic()
            self.idle.append(conn)
        else:
            conn.close()
        return status

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle = []


@dataclass(slots=True)
class Traveller:
    auth: str                  # the device token's header line
    lon: float
    lat: float
    leave_from_m: float | None = None   # leavers: where on SARASIN_EXIT they were when the load began
    last_t: float = 0.0        # epoch seconds of the last fix sent (fix times only increase)
    busy: bool = False         # a ping of this traveller is in flight (never two at once)


def _along(route: list[tuple[float, float]], metres: float) -> tuple[float, float]:
    """The point ``metres`` along a polyline (its end beyond it)."""
    for a, b in itertools.pairwise(route):
        kx = M_PER_DEG * math.cos(math.radians(a[1]))
        seg = math.hypot((b[0] - a[0]) * kx, (b[1] - a[1]) * M_PER_DEG)
        if metres <= seg:
            f = metres / seg
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        metres -= seg
    return route[-1]


class Travellers:
    """A pool of tourists registered through the real flow (arrival at a checkpoint with an immigration token,
    ``POST /tracking/enrol`` with the code), then pinging in turn with their device tokens: each ping is one
    fix stamped with the wall clock, later than the traveller's previous one, at a position that moves at a
    plausible speed (walking, or driving out of the province for ``LEAVING_SHARE`` of them)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pool: list[Traveller] = []
        self.cursor = 0
        self.began = 0.0
        self.items: dict[str, int] = {"accepted": 0, "duplicates": 0}   # per fix, from the 202 answers
        self.registration_errors: dict[str, int] = {}

    async def register(self, http: httpx.AsyncClient, n: int, concurrency: int = 16) -> float:
        r = await http.post("/api/v1/tokens", json={"role": "immigration", "name": "load checkpoints"})
        r.raise_for_status()
        immigration = {"Authorization": f"Bearer {r.json()['token']}"}
        model = TouristModel(11)
        arrived = datetime.now(UTC) - timedelta(minutes=5)   # not overdue within the run (2 intervals + grace)
        anchors = [(lon, lat) for lon, lat, _ in SIGHTS] + [xy for xy, _ in STAYS.values()]
        sem = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def one(i: int) -> None:
            tourist = model.new_tourist(0.0)
            async with sem:
                r = await http.post("/api/v1/tracking/arrivals", headers=immigration,
                                    json=model.arrival_body(tourist, arrived))
                if r.status_code != 201:
                    key = f"arrival {r.status_code}"
                    self.registration_errors[key] = self.registration_errors.get(key, 0) + 1
                    return
                r = await http.post("/api/v1/tracking/enrol", headers={"Authorization": ""},
                                    json={"enrolment_code": r.json()["enrolment_code"]})
                if r.status_code != 200:
                    key = f"enrol {r.status_code}"
                    self.registration_errors[key] = self.registration_errors.get(key, 0) + 1
                    return
            auth = f"Authorization: Bearer {r.json()['device_token']}\r\n"
            if self.rng.random() < LEAVING_SHARE:    # somewhere on the road north, before or past the bridge
                start = self.rng.uniform(0.0, 8000.0)
                self.pool.append(Traveller(auth, *_along(SARASIN_EXIT, start), leave_from_m=start))
            else:
                lon, lat = self.rng.choice(anchors)
                self.pool.append(Traveller(auth, lon + self.rng.gauss(0, 0.003), lat + self.rng.gauss(0, 0.003)))

        await asyncio.gather(*(one(i) for i in range(n)))
        self.rng.shuffle(self.pool)
        return time.perf_counter() - started

    def next_fix(self) -> tuple[Traveller, bytes] | None:
        """The next idle traveller in turn and its ping body, or None when every one has a ping in flight."""
        for _ in range(len(self.pool)):
            tr = self.pool[self.cursor % len(self.pool)]
            self.cursor += 1
            if not tr.busy:
                break
        else:
            return None
        now = time.time()
        t = max(now, tr.last_t + 0.001)
        if tr.leave_from_m is not None:
            tr.lon, tr.lat = _along(SARASIN_EXIT, tr.leave_from_m + DRIVE_M_S * (now - self.began))
        elif tr.last_t:
            step = WALK_M_S * min(t - tr.last_t, 600.0) / M_PER_DEG
            heading = self.rng.uniform(0, 2 * math.pi)
            tr.lon += step * math.cos(heading) / math.cos(math.radians(tr.lat))
            tr.lat += step * math.sin(heading)
        tr.last_t = t
        acc = self.rng.choice([5.0, 8.0, 12.0, 20.0, 35.0])
        return tr, orjson.dumps({"pings": [{
            "t": datetime.fromtimestamp(t, UTC).isoformat(), "lat": round(tr.lat, 6), "lon": round(tr.lon, 6),
            "accuracy_m": acc, "battery": self.rng.randrange(15, 101), "source": "gps"}]})

    def count(self, answer: bytes) -> None:
        body = orjson.loads(answer)
        self.items["accepted"] += int(body.get("accepted", 0))
        self.items["duplicates"] += int(body.get("duplicates", 0))
        for rej in body.get("rejected", []):
            key = f"rejected {rej.get('code')}"
            self.items[key] = self.items.get(key, 0) + 1


class Sampler:
    def __init__(self, pid: int, base: str, feeds: dict[str, Feed]) -> None:
        self.proc = psutil.Process(pid)
        self.me = psutil.Process()           # the load generator, on the same cores
        self.base = base
        self.feeds = feeds
        self.rows: list[dict[str, Any]] = []

    async def run(self, stop: asyncio.Event) -> None:
        self.proc.cpu_percent(None)
        self.me.cpu_percent(None)
        t0 = time.monotonic()
        async with httpx.AsyncClient(timeout=5) as http:
            while not stop.is_set():
                await asyncio.sleep(1.0)
                depths: dict[str, float] = {}
                memory: dict[str, float] = {}
                with contextlib.suppress(httpx.HTTPError):
                    text = (await http.get(f"{self.base}/metrics")).text
                    for m in re.finditer(r'^citydata_queue_depth\{name="([^"]+)"\} (\S+)$', text, re.M):
                        depths[m.group(1)] = float(m.group(2))
                    for m in re.finditer(r'^citydata_memory_bytes\{name="([^"]+)"\} (\S+)$', text, re.M):
                        memory[m.group(1)] = round(float(m.group(2)) / 2**20, 1)
                    for m in re.finditer(r'^citydata_wifi_tracker\{name="([^"]+)"\} (\S+)$', text, re.M):
                        memory[f"wifi_{m.group(1)}"] = float(m.group(2))
                try:
                    cpu = self.proc.cpu_percent(None)
                    rss = self.proc.memory_info().rss / 2**20
                except psutil.Error:
                    break
                self.rows.append({"t": round(time.monotonic() - t0, 1), "cpu_percent": cpu, "rss_mib": round(rss, 1),
                                  # the server's own breakdown (MiB; wifi_* are the WiFi tracker's entries)
                                  "memory": memory,
                                  "generator_cpu_percent": self.me.cpu_percent(None), "queues": depths,
                                  # units answered 2xx so far, per feed (the plot's throughput over time)
                                  "done": {n: f.ok * f.unit_per_request for n, f in self.feeds.items()}})


def plot(samples: list[dict[str, Any]], feeds: dict[str, Feed], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(10, 12), sharex=True)
    axes[0].plot(t, [s["cpu_percent"] for s in samples], color="tab:red")
    axes[0].set_ylabel("server CPU %\n(100 = one core)")
    axes[1].plot(t, [s["rss_mib"] for s in samples], color="tab:blue", label="RSS")
    for part, colour in (("rss_file", "tab:gray"), ("heap_in_use", "tab:green"), ("heap_free", "tab:orange"),
                         ("sqlite", "tab:purple")):
        if any(part in s.get("memory", {}) for s in samples):
            axes[1].plot(t, [s.get("memory", {}).get(part, float("nan")) for s in samples], color=colour,
                         label=part.replace("_", " "), linewidth=1)
    axes[1].set_ylabel("server memory (MiB)")
    axes[1].legend(fontsize=7, loc="upper left")
    names = sorted({k for s in samples for k in s["queues"]})
    for name in names:
        axes[2].plot(t, [s["queues"].get(name, 0.0) for s in samples], label=name)
    axes[2].set_ylabel("queue depth")
    if names:
        axes[2].legend(fontsize=7, loc="upper right")
    window = 10          # samples (about one a second): throughput as a 10 s moving mean, as a share of the target
    for name, feed in feeds.items():
        done = [s.get("done", {}).get(name, 0) for s in samples]
        shares = [(done[i] - done[max(0, i - window)]) / max(t[i] - t[max(0, i - window)], 1e-9) / feed.rate
                  if i else 0.0 for i in range(len(samples))]
        axes[3].plot(t, shares, label=f"{name} (target {feed.rate:g}/s)")
    axes[3].set_ylabel("achieved / target\n(10 s mean)")
    axes[3].set_xlabel("seconds")
    axes[3].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rates = {k: v * args.scale for k, v in FEEDS.items()}
    with tempfile.TemporaryDirectory(prefix="citydata-load-") as tmp:
        data = Path(tmp) / "data"
        # the geofence dwell shortened from 600 s so that the exits over the bridge are confirmed within the run
        server = Server(data, CITYDATA_REPORTS_PER_CLIENT_HOUR="100000000", CITYDATA_TRACKING_DWELL_S="60")
        server.start()
        try:
            return await _drive(server, rates, args)
        finally:
            server.stop()
            if args.server_log is not None:   # the temporary data directory goes away with its log
                shutil.copyfile(data / f"server-{server.port}.log", args.server_log)


async def _drive(server: Server, rates: dict[str, float], args: argparse.Namespace) -> dict[str, Any]:
    token = make_token(server.data_dir, "admin")
    headers = {"Authorization": f"Bearer {token}"}
    streams = await asyncio.to_thread(create_streams, server.base, token, args.sensors)
    half = len(streams) // 2
    mqtt_streams, http_streams = streams[:half], streams[half:]
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
        hotspots = [h["id"] for h in (await http.get("/api/v1/wifi/hotspots", params={"limit": 1000})).json()
                    .get("items", [])]
        cameras = []
        for i in range(50):
            cam = f"cam:load-{i:02d}"
            r = await http.post("/api/v1/cameras", json={"id": cam, "name": f"load {i}", "lon": 98.29 + i / 1000,
                                                         "lat": 7.89, "heading_deg": 0.0, "analytics": ["traffic"]})
            if r.status_code in (201, 409):
                cameras.append(cam)
        travellers = Travellers(random.Random(5))
        registration_s = await travellers.register(http, args.travellers)
    feeds = {"mqtt_sensors": Feed("mqtt_sensors", rates["mqtt_sensors"]),
             "http_sensors": Feed("http_sensors", rates["http_sensors"]),
             "pings": Feed("pings", rates["pings"]),
             "reports": Feed("reports", rates["reports"]),
             "wifi_lines": Feed("wifi_lines", rates["wifi_lines"], unit_per_request=WIFI_BATCH),
             "cctv": Feed("cctv", rates["cctv"])}
    if not hotspots:
        feeds.pop("wifi_lines")
    if not cameras:
        feeds.pop("cctv")
    if not travellers.pool:
        feeds.pop("pings")
    for name in set(feeds) - set(args.feeds.split(",")) if args.feeds else ():
        feeds.pop(name)
    rng = random.Random(7)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    seq = {"mqtt": 0, "http": 0}
    stop = asyncio.Event()
    mqtt_port = int(server.mqtt_url.rsplit(":", 1)[1])
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    # one client per feed, so no feed waits on another's connections
    clients = {name: RawHTTP(host, int(port), {} if name == "pings" else headers) for name in feeds}  # pings: device

    quiet = logging.getLogger("load.mqtt")      # not a warning per publish beyond 10 in flight
    quiet.setLevel(logging.ERROR)
    async with contextlib.AsyncExitStack() as exits, \
            aiomqtt.Client("127.0.0.1", mqtt_port, username=token, identifier="load-sensors", logger=quiet,
                           timeout=30, max_inflight_messages=args.inflight) as mqtt:
        for client in clients.values():
            exits.callback(client.close)

        async def mqtt_obs() -> int:
            seq["mqtt"] += 1
            n = seq["mqtt"]
            ds = mqtt_streams[n % len(mqtt_streams)]
            at = t0 + timedelta(seconds=n // len(mqtt_streams), microseconds=n % 1000)
            await mqtt.publish(f"v1.1/Datastreams({ds})/Observations",
                               orjson.dumps({"phenomenonTime": at.isoformat(), "result": rng.uniform(20, 35)}),
                               qos=1, timeout=30)
            return 200

        async def http_obs() -> int:
            seq["http"] += 1
            n = seq["http"]
            ds = http_streams[n % len(http_streams)]
            at = t0 + timedelta(seconds=n // len(http_streams), microseconds=n % 1000)
            return await clients["http_sensors"].post(f"/v1.1/Datastreams({ds})/Observations", orjson.dumps(
                {"phenomenonTime": at.isoformat(), "result": rng.uniform(20, 35)}))

        async def report() -> int:
            return await clients["reports"].post("/api/v1/reports", orjson.dumps({
                "category": rng.choice(CATEGORIES), "text": "jet ski operator asks for 30,000 baht for a scratch",
                "lat": 7.89 + rng.uniform(-0.02, 0.02), "lon": 98.29 + rng.uniform(-0.02, 0.02), "lang": "en"}))

        async def ping() -> int:
            nxt = travellers.next_fix()
            if nxt is None:
                raise RuntimeError("every traveller has a ping in flight")
            tr, body = nxt
            tr.busy = True
            answer: list[bytes] = []
            try:
                status = await clients["pings"].post("/api/v1/tracking/pings", body, extra=tr.auth, answer=answer)
            finally:
                tr.busy = False
            if status == 202:
                travellers.count(b"".join(answer))
            return status

        async def wifi() -> int:
            now = int(time.time())
            lines = "\n".join(orjson.dumps({
                "event": rng.choice(["associate", "disassociate"]),
                "mac": "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5)),
                "hotspot_id": rng.choice(hotspots), "time": now}).decode() for _ in range(WIFI_BATCH))
            return await clients["wifi_lines"].post("/api/v1/wifi/events", lines.encode(), "application/x-ndjson")

        async def cctv() -> int:
            kind = rng.choice(["red_light", "wrong_way", "plate"])
            body: dict[str, Any] = {"camera_id": rng.choice(cameras), "type": kind, "line": "stop-north",
                                    "track_id": str(rng.randrange(10**6)),
                                    "time": datetime.now(UTC).isoformat()}
            if kind == "plate":
                body.update({"plate": f"กข{rng.randrange(10000):04d}", "province": "ภูเก็ต", "confidence": 0.9})
            return await clients["cctv"].post("/api/v1/vision/vendor/acme", orjson.dumps(body))

        makers = {"mqtt_sensors": mqtt_obs, "http_sensors": http_obs, "pings": ping, "reports": report,
                  "wifi_lines": wifi, "cctv": cctv}
        assert server.proc is not None
        sampler = Sampler(server.proc.pid, server.base, feeds)
        tasks = [asyncio.create_task(_paced(f, stop, args.inflight, makers[name])) for name, f in feeds.items()]
        sampling = asyncio.create_task(sampler.run(stop))
        started = time.monotonic()
        travellers.began = time.time()
        profiler = Profiler(server.proc.pid, args.profile or Path(), args.profile is not None)
        with profiler:
            await asyncio.sleep(args.duration)
        stop.set()
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - started
        await sampling
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
        r = await http.get("/api/v1/tracking/attention")
        attention = r.json() if r.status_code == 200 else {"error": r.status_code}
    if args.profile is not None:
        print_profile("server profile during the load (py-spy)", profiler.summary(), top=30)
    result = {"duration_s": round(seconds, 1), "scale": args.scale, "sensors": len(streams),
              "hotspots": len(hotspots), "cameras": len(cameras), "inflight_per_feed": args.inflight,
              "feeds": {name: f.summary(seconds) for name, f in feeds.items()},
              "http_connections_opened": {name: c.opened for name, c in clients.items() if c.opened},
              "travellers": {"registered": len(travellers.pool), "registration_s": round(registration_s, 1),
                             "registration_errors": travellers.registration_errors,
                             "leaving": sum(t.leave_from_m is not None for t in travellers.pool),
                             "fixes": travellers.items, "attention_after": _attention_counts(attention)},
              "samples": sampler.rows}
    cpu = [s["cpu_percent"] for s in sampler.rows]
    rss = [s["rss_mib"] for s in sampler.rows]
    gen = [s["generator_cpu_percent"] for s in sampler.rows]
    result["server"] = {"cpu_percent_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
                        "generator_cpu_percent_mean": round(sum(gen) / len(gen), 1) if gen else None,
                        "load_average_end": [round(x, 2) for x in psutil.getloadavg()],
                        "rss_mib_first": rss[0] if rss else None, "rss_mib_last": rss[-1] if rss else None,
                        "rss_mib_max": max(rss) if rss else None,
                        # the server's memory breakdown (MiB) at the first and the last sample
                        "memory_first": sampler.rows[0].get("memory", {}) if sampler.rows else {},
                        "memory_last": sampler.rows[-1].get("memory", {}) if sampler.rows else {},
                        "queue_depth_max": {k: max(s["queues"].get(k, 0.0) for s in sampler.rows)
                                            for k in sorted({k for s in sampler.rows for k in s["queues"]})}}
    if args.png:
        plot(sampler.rows, feeds, args.png, f"CityData load: {args.scale:g} x 10 x Phuket peak, "
                                            f"{seconds:.0f} s, {psutil.cpu_count()} CPUs (generator on the same host)")
        result["png"] = str(args.png.relative_to(REPO)) if args.png.is_relative_to(REPO) else str(args.png)
    rows = []
    for name, f in result["feeds"].items():
        rows.append({"metric": f"{name}: achieved / target (per s)", "ours": f["achieved_per_s"],
                     "baseline": f["target_per_s"], "baseline_name": "target",
                     "ratio": round(f["achieved_per_s"] / f["target_per_s"], 3) if f["target_per_s"] else None,
                     "goal": "1.0, rejects 0",
                     "note": f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, p999 {f['p999_ms']} ms; rejected "
                             f"{f['rejected_429_503']}, errors {f['errors']}, "
                             f"client behind {f['not_sent_client_behind']}"})
    srv = result["server"]
    trv = result["travellers"]
    rows.append({"metric": "server CPU mean (%), RSS first -> last (max) MiB", "ours": srv["cpu_percent_mean"],
                 "note": f"load generator CPU {srv['generator_cpu_percent_mean']}%, load average at the end "
                         f"{srv['load_average_end']}; {trv['registered']} travellers pinging in turn "
                         f"({trv['leaving']} driving out over the Sarasin bridge), fixes {trv['fixes']}, "
                         f"attention list after {trv['attention_after']}; "
                         f"RSS {srv['rss_mib_first']} -> {srv['rss_mib_last']} (max {srv['rss_mib_max']}); "
                         f"memory at the end {srv['memory_last']}; "
                         f"max queue depths {srv['queue_depth_max']}; plot {result.get('png', '-')}"})
    result["summary"] = rows
    return result


def _attention_counts(attention: dict[str, Any]) -> dict[str, Any]:
    """What ``/tracking/attention`` lists after the run (travellers outside the province, overdue), counted."""
    return {k: len(v) if isinstance(v, list) else v for k, v in attention.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 10 x peak rates")
    parser.add_argument("--sensors", type=int, default=300)
    parser.add_argument("--travellers", type=int, default=3000, help="tourists registered and pinging in turn")
    parser.add_argument("--inflight", type=int, default=64, help="most requests in flight per feed")
    parser.add_argument("--png", type=Path, default=REPO / "bench" / "load.png")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--feeds", help="only these feeds, comma-separated (default all): " + ",".join(FEEDS))
    parser.add_argument("--server-log", type=Path, help="keep a copy of the server's log here")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the server during the load")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    printable = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(printable, indent=1))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
