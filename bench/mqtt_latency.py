"""MQTT benchmarks: (c) SensorThings QoS 1 ingest, and MQTT publish -> alert on SSE latency.

(c) ingest: 4 concurrent paho-mqtt QoS 1 publishers send SensorThings Observations (distinct phenomenonTimes) to
``v1.1/Datastreams(<id>)/Observations``:

* on the platform's **embedded** broker, which acknowledges a QoS 1 publish only after the Observation is
  committed: rate = PUBACKs per second (checked against the rows in the observations table);
  baseline: a bare paho QoS 1 subscriber's receive rate on an amqtt broker started on its own (own process),
  same publishers;
* on **Mosquitto** (a private ``mosquitto -p PORT`` so the shared broker's other users never see our
  ``v1.1/...`` topics), with the platform on ``CITYDATA_MQTT_URL=mqtt://...`` and a unique client id: the
  broker acknowledges devices itself, so rate = rows stored per second from the first publish until the platform
  drained; baseline: a bare paho QoS 1 subscriber on the same Mosquitto, same publishers.

Goal: ours / baseline >= 0.5.

latency: ~50 Datastreams, one threshold rule (above 100, clear below 50) on all of them; an SSE client on
``GET /api/v1/stream?events=alert``; 4 publishers send ``--rate`` messages/s in total (default 2,000 = 10 x
Phuket peak), of which ``--crossings`` per second alternate high/low on a few Datastreams and the rest is
below-threshold background on the others. Latency = receive time of the ``opened`` alert (matched by its
``observed_at``, the phenomenonTime of the crossing) minus the time the crossing was handed to paho. Goal:
p99 < 100 ms. Context baseline: a bare MQTT QoS 1 publish -> subscribe round trip on the same embedded broker.

    .venv/bin/python bench/mqtt_latency.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PY,
    REPO,
    Server,
    clean_env,
    count_rows,
    create_streams,
    free_port,
    make_token,
    print_table,
    stop_process,
    write_json,
)

T_BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
PUBLISHERS = 4
AMQTT_BROKER = '''
import asyncio, sys
from amqtt.broker import Broker
async def main(port):
    b = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 1000}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}})
    await b.start()
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1])))
'''


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def wait_port(port: int, timeout: float = 30.0) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# -- paho clients -------------------------------------------------------------------------------------------------
class Client:
    """A paho-mqtt 2.x client on its own network thread; QoS 1 publishes with at most ``window`` unacknowledged."""

    def __init__(self, port: int, *, token: str | None = None, window: int = 20, name: str = "bench") -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:10]}",
                             protocol=mqtt.MQTTv311)
        if token:
            self.c.username_pw_set("bench", token)
        self.c.max_inflight_messages_set(window)
        self.window = threading.Semaphore(window)
        self.acks = 0
        self.last_ack = 0.0
        self.received = 0
        self.last_recv = 0.0
        self.on_message: Callable[[str, bytes, float], None] | None = None
        self.connected = threading.Event()
        self.disconnects = 0
        self.c.on_connect = lambda *a: self.connected.set()
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=120)
        self.c.loop_start()
        if not self.connected.wait(30):
            raise RuntimeError(f"MQTT connect to port {port} timed out")

    def _on_disconnect(self, *args: Any) -> None:
        self.disconnects += 1

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.acks += 1
        self.last_ack = time.perf_counter()
        self.window.release()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        self.received += 1
        self.last_recv = now
        if self.on_message is not None:
            self.on_message(msg.topic, msg.payload, now)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        if not done.wait(30):
            raise RuntimeError(f"SUBACK for {topic} timed out")

    def publish(self, topic: str, payload: bytes) -> None:
        self.window.acquire()
        self.c.publish(topic, payload, qos=1)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.c.disconnect()
        self.c.loop_stop()


def obs(i: int, value: float) -> bytes:
    t = T_BASE + timedelta(milliseconds=i)
    return json.dumps({"phenomenonTime": t.isoformat().replace("+00:00", "Z"), "result": value}).encode()


def flood(port: int, token: str | None, topics: Sequence[str], total: int, offset: int) -> dict[str, Any]:
    """``PUBLISHERS`` clients, each publishing ``total / PUBLISHERS`` QoS 1 messages as fast as their window
    allows (publisher k on topics k, k+4, ...); distinct phenomenonTimes from ``offset``. Waits for every PUBACK."""
    pubs = [Client(port, token=token, window=20, name=f"pub{k}") for k in range(PUBLISHERS)]
    per = total // PUBLISHERS
    go = threading.Barrier(PUBLISHERS + 1)

    def run(k: int) -> None:
        mine = [t for j, t in enumerate(topics) if j % PUBLISHERS == k] or list(topics)
        go.wait()
        for n in range(per):
            i = offset + n * PUBLISHERS + k
            pubs[k].publish(mine[n % len(mine)], obs(i, float(i % 40)))

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(PUBLISHERS)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    sent_s = time.perf_counter() - start
    deadline = time.monotonic() + 120
    while sum(p.acks for p in pubs) < per * PUBLISHERS and time.monotonic() < deadline:
        time.sleep(0.01)
    acks = sum(p.acks for p in pubs)
    last_ack = max(p.last_ack for p in pubs)
    disconnects = sum(p.disconnects for p in pubs)
    for p in pubs:
        p.close()
    return {"sent": per * PUBLISHERS, "acks": acks, "start": start, "sent_s": round(sent_s, 3),
            "ack_s": round(last_ack - start, 3), "ack_rate": round(acks / max(last_ack - start, 1e-9), 1),
            "disconnects": disconnects}


def subscriber_rate(port: int, total: int) -> dict[str, Any]:
    """Baseline: a bare QoS 1 subscriber on ``bench/<uuid>/#`` receiving what the publishers send."""
    prefix = f"bench/{uuid.uuid4().hex}"
    sub = Client(port, name="sub")
    sub.subscribe(f"{prefix}/#")
    topics = [f"{prefix}/Datastreams({i})/Observations" for i in range(1, 9)]
    run = flood(port, None, topics, total, 0)
    deadline = time.monotonic() + 60
    while sub.received < run["sent"] and time.monotonic() < deadline:
        time.sleep(0.01)
    sub.close()
    elapsed = sub.last_recv - run["start"]
    return {**run, "received": sub.received, "recv_s": round(elapsed, 3),
            "rate": round(sub.received / max(elapsed, 1e-9), 1)}


def drain_rows(db: Path, before: int, expected: int, start: float, quiet_s: float = 10.0) -> dict[str, Any]:
    """Poll the observations table until ``expected`` new rows are there or nothing changed for ``quiet_s``."""
    last_n, last_change = before, time.perf_counter()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        n = count_rows(db)
        now = time.perf_counter()
        if n != last_n:
            last_n, last_change = n, now
        if n - before >= expected or now - last_change > quiet_s:
            break
        time.sleep(0.05)
    stored = last_n - before
    return {"stored": stored, "drain_s": round(last_change - start, 3),
            "rate": round(stored / max(last_change - start, 1e-9), 1)}


# -- (c) ingest ---------------------------------------------------------------------------------------------------
def ingest_embedded(data: Path, token: str, total: int) -> dict[str, Any]:
    with Server(data) as srv:
        ids = create_streams(srv.base, token, 8)
        port = int(srv.mqtt_url.rsplit(":", 1)[1])
        topics = [f"v1.1/Datastreams({i})/Observations" for i in ids]
        flood(port, token, topics, 400, 10_000_000)   # warm-up
        before = count_rows(data / "citydata.db")
        run = flood(port, token, topics, total, 0)
        rows = count_rows(data / "citydata.db") - before
    amqtt_port = free_port()
    broker = subprocess.Popen([PY, "-c", AMQTT_BROKER, str(amqtt_port)], cwd=REPO, env=clean_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(amqtt_port)
        subscriber_rate(amqtt_port, 400)   # warm-up
        base = subscriber_rate(amqtt_port, total)
    finally:
        stop_process(broker, 10)
    return {"ours": {**run, "rows_stored": rows, "rate": run["ack_rate"]}, "baseline": base}


def ingest_mosquitto(data: Path, token: str, total: int) -> dict[str, Any]:
    port = free_port()
    conf = data / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        subscriber_rate(port, 400)
        base = subscriber_rate(port, total)
        db = data / "citydata.db"
        with Server(data, mqtt_url=f"mqtt://127.0.0.1:{port}",
                    CITYDATA_MQTT_CLIENT_ID=f"bench-{uuid.uuid4().hex[:12]}") as srv:
            ids = create_streams(srv.base, token, 8)
            topics = [f"v1.1/Datastreams({i})/Observations" for i in ids]
            before = count_rows(db)
            warm = flood(port, None, topics, 400, 10_000_000)
            drain_rows(db, before, warm["sent"], warm["start"], quiet_s=5)
            before = count_rows(db)
            run = flood(port, None, topics, total, 0)
            ours = {**run, **drain_rows(db, before, run["sent"], run["start"])}
    finally:
        stop_process(broker, 10)
    return {"ours": ours, "baseline": base}


def queue_depths(base: str) -> dict[str, float]:
    """The bus's consumer and subscriber queue depths from ``/metrics`` (non-zero ones)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = {m.group(1): float(m.group(2)) for m in
             re.finditer(r'name="((?:consumer|subscriber|store_writer)[^"]*)"\} ([\d.e+]+)', text)}
    return {k: v for k, v in found.items() if v}


# -- latency ------------------------------------------------------------------------------------------------------
class Sse:
    """``GET /api/v1/stream?events=alert`` in a thread: receive time of each ``opened`` alert by observed_at."""

    def __init__(self, base: str, token: str) -> None:
        self.opened: dict[datetime, float] = {}
        self.events = 0
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, args=(base, token), daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError(f"SSE stream did not open: {self.error}")

    def _run(self, base: str, token: str) -> None:
        try:
            with httpx.stream("GET", f"{base}/api/v1/stream", params={"events": "alert"},
                              headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(60, read=None)) \
                    as r:
                r.raise_for_status()
                event = ""
                for line in r.iter_lines():
                    now = time.perf_counter()
                    self.ready.set()
                    if self.stop.is_set():
                        return
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "alert":
                        self.events += 1
                        body = json.loads(line[5:])
                        if body.get("change") == "opened":
                            at = body["alert"].get("observed_at")
                            if at:
                                self.opened[datetime.fromisoformat(at)] = now
                    elif not line:
                        event = ""
        except Exception as err:
            self.error = repr(err)
            self.ready.set()


def mqtt_round_trip(port: int, token: str, n: int) -> dict[str, Any]:
    """Context baseline: bare QoS 1 publish -> subscribe on the embedded broker (not an intercepted topic)."""
    topic = f"v1.1/bench-{uuid.uuid4().hex[:10]}/rt"
    got: dict[int, float] = {}
    sub = Client(port, token=token, name="rtsub")
    sub.on_message = lambda t, p, now: got.__setitem__(int(p), now)
    sub.subscribe(topic)
    pub = Client(port, token=token, name="rtpub")
    sent: dict[int, float] = {}
    for i in range(n):
        sent[i] = time.perf_counter()
        pub.publish(topic, str(i).encode())
        time.sleep(0.005)
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    pub.close()
    sub.close()
    lat = [1000 * (got[i] - sent[i]) for i in sent if i in got]
    return {"samples": len(lat), "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99)}


def latency(data: Path, token: str, rate: float, crossings: float, seconds: float, streams: int) -> dict[str, Any]:
    with Server(data) as srv:
        ids = create_streams(srv.base, token, streams)
        port = int(srv.mqtt_url.rsplit(":", 1)[1])
        headers = {"Authorization": f"Bearer {token}"}
        rule = {"id": "bench-latency", "name": "bench latency", "enabled": True, "source": {"datastreams": ids},
                "group_by": "datastream", "condition": {"threshold": {"above": 100, "clear_below": 50}},
                "alert": {"kind": "env.test_level", "severity": "minor", "category": "Env",
                          "message": "level {value} at {subject}"}}
        r = httpx.post(f"{srv.base}/api/v1/rules", json=rule, headers=headers, timeout=30)
        r.raise_for_status()
        rt = mqtt_round_trip(port, token, 300)
        sse = Sse(srv.base, token)
        # crossing streams: enough that each sees at most ~5 crossings/s; the others carry the background
        n_cross = max(2, min(len(ids) // 3, int(crossings // 5) or 1))
        cross_ids, back_ids = ids[:n_cross], ids[n_cross:]
        total = int(rate * seconds)
        every = max(1, round(rate / crossings))
        # plan: message i at i / rate; a Datastream always goes through the same publisher (order kept)
        plans: list[list[tuple[float, str, bytes, datetime | None]]] = [[] for _ in range(PUBLISHERS)]
        high = dict.fromkeys(cross_ids, False)
        ci = bi = 0
        for i in range(total):
            t = T_BASE + timedelta(milliseconds=i)
            if i % every == 0:
                ds = cross_ids[ci % n_cross]
                ci += 1
                high[ds] = not high[ds]
                value, key = (150.0, t) if high[ds] else (10.0, None)
            else:
                ds = back_ids[bi % len(back_ids)]
                bi += 1
                value, key = float(i % 40), None
            payload = json.dumps({"phenomenonTime": t.isoformat().replace("+00:00", "Z"), "result": value}).encode()
            plans[ids.index(ds) % PUBLISHERS].append((i / rate, f"v1.1/Datastreams({ds})/Observations", payload, key))
        pubs = [Client(port, token=token, window=200, name=f"lat{k}") for k in range(PUBLISHERS)]
        sent: dict[datetime, float] = {}
        behind = [0.0] * PUBLISHERS
        go = threading.Barrier(PUBLISHERS + 1)
        start_box: list[float] = []

        def run(k: int) -> None:
            go.wait()
            t0 = start_box[0]
            for at, topic, payload, key in plans[k]:
                delay = t0 + at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                else:
                    behind[k] = max(behind[k], -delay)
                if key is not None:
                    sent[key] = time.perf_counter()
                pubs[k].publish(topic, payload)

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(PUBLISHERS)]
        for th in threads:
            th.start()
        start_box.append(time.perf_counter() + 0.2)
        go.wait()
        for th in threads:
            th.join()
        t0 = start_box[0]
        send_end = time.perf_counter()
        acked_at_end = sum(p.acks for p in pubs)
        depths_at_end = queue_depths(srv.base)
        deadline = time.monotonic() + 60
        while sum(p.acks for p in pubs) < total and time.monotonic() < deadline:
            time.sleep(0.01)
        ack_end = max(p.last_ack for p in pubs)
        deadline = time.monotonic() + 10
        while len(set(sent) & set(sse.opened)) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        sse.stop.set()
        disconnects = sum(p.disconnects for p in pubs)
        for p in pubs:
            p.close()
        by_second: dict[int, list[float]] = {}
        for k, s in sent.items():
            if k in sse.opened:
                by_second.setdefault(int(s - t0), []).append(1000 * (sse.opened[k] - s))
        lat = [1000 * (sse.opened[k] - s) for k, s in sent.items() if k in sse.opened]
        live = [1000 * (sse.opened[k] - s) for k, s in sent.items() if k in sse.opened and s - t0 <= seconds]
        return {
            "rate_target": rate, "crossings_per_s": round(rate / every, 1), "seconds": seconds,
            "streams": len(ids), "crossing_streams": n_cross, "messages": total,
            "send_s": round(send_end - t0, 3), "sent_rate": round(total / max(send_end - t0, 1e-9), 1),
            "acked_rate": round(sum(p.acks for p in pubs) / max(ack_end - t0, 1e-9), 1),
            "backlog_at_end": total - acked_at_end, "publisher_max_behind_s": round(max(behind), 3),
            "drain_after_send_s": round(max(0.0, ack_end - send_end), 3),
            "crossings_sent": len(sent), "alerts_matched": len(lat), "sse_alert_events": sse.events,
            "sse_error": sse.error, "disconnects": disconnects,
            "queue_depths_at_send_end": depths_at_end,
            "p50_ms_by_second": [pct(by_second[b], 0.5) for b in sorted(by_second)],
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "p999_ms": pct(lat, 0.999) if len(lat) >= 1000 else None,
            "max_ms": round(max(lat), 2) if lat else None, "on_schedule_samples": len(live),
            "round_trip": rt,
        }


# -- main ---------------------------------------------------------------------------------------------------------
def row(metric: str, ours: float | None, base: float | None, base_name: str, goal: str, note: str,
        ratio: float | None = None) -> dict[str, Any]:
    if ratio is None and ours is not None and base:
        ratio = round(ours / base, 3)
    return {"metric": metric, "ours": ours, "baseline": base, "baseline_name": base_name, "ratio": ratio,
            "goal": goal, "note": note}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about 30 s in all")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--messages", type=int, help="messages per ingest run (default 3,000 quick, 40,000 full)")
    ap.add_argument("--rate", type=float, default=2000.0, help="latency: total messages/s (10 x Phuket peak)")
    ap.add_argument("--crossings", type=float, default=50.0, help="latency: threshold crossings per second")
    ap.add_argument("--seconds", type=float, help="latency: seconds of load (default 5 quick, 60 full)")
    ap.add_argument("--streams", type=int, default=50, help="latency: Datastreams")
    ap.add_argument("--only", choices=("ingest", "latency"), help="run one part")
    args = ap.parse_args()
    total = args.messages or (3_000 if args.quick else 40_000)
    seconds = args.seconds or (5.0 if args.quick else 60.0)
    report: dict[str, Any] = {"quick": args.quick, "load_start": loadavg(), "cores": os.cpu_count()}
    summary: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="citydata-mqtt-bench-") as tmp:
        root = Path(tmp)
        if args.only in (None, "ingest"):
            d = root / "embedded"
            token = make_token(d)
            emb = report["ingest_embedded"] = ingest_embedded(d, token, total)
            summary.append(row("mqtt_qos1_ingest_embedded_obs_per_s", emb["ours"]["rate"], emb["baseline"]["rate"],
                               "bare paho QoS 1 subscriber on a standalone amqtt broker, same 4 publishers",
                               ">= 0.5", f"{total} msgs, 4 publishers x window 20; PUBACK after commit; "
                               f"rows stored {emb['ours']['rows_stored']}"))
            d = root / "mosquitto"
            token = make_token(d)
            mos = report["ingest_mosquitto"] = ingest_mosquitto(d, token, total)
            summary.append(row("mqtt_qos1_ingest_mosquitto_obs_per_s", mos["ours"]["rate"], mos["baseline"]["rate"],
                               "bare paho QoS 1 subscriber on the same (private) Mosquitto, same 4 publishers",
                               ">= 0.5", f"{total} msgs; rows stored {mos['ours']['stored']} until drained "
                               f"({mos['ours']['drain_s']} s); publishers done in {mos['ours']['sent_s']} s"))
        if args.only in (None, "latency"):
            d = root / "latency"
            token = make_token(d)
            lat = report["latency"] = latency(d, token, args.rate, args.crossings, seconds, args.streams)
            rt = lat["round_trip"]
            note = (f"{lat['messages']} msgs at {lat['rate_target']:g}/s target, sent {lat['sent_rate']}/s, acked "
                    f"{lat['acked_rate']}/s, backlog at end {lat['backlog_at_end']}, drained "
                    f"{lat['drain_after_send_s']} s after; {lat['alerts_matched']}/{lat['crossings_sent']} "
                    f"crossings matched")
            for q in ("p50", "p99", "p999"):
                ours = lat[f"{q}_ms"]
                base = rt.get(f"{q}_ms")
                summary.append(row(f"mqtt_publish_to_sse_alert_{q}_ms", ours, base,
                                   "bare QoS 1 publish -> subscribe round trip, same embedded broker (idle)",
                                   "p99 < 100 ms" if q == "p99" else "context", note,
                                   ratio=round(ours / base, 2) if ours is not None and base else None))
    report["load_end"] = loadavg()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    load_note = f"load average {report['load_start']} at start, {report['load_end']} at end, {os.cpu_count()} cores"
    for r in summary:
        r["note"] = f"{r['note']}; {load_note}"
    report["summary"] = summary
    print_table("MQTT benchmarks", [(r["metric"], str(r["ours"]), str(r["baseline"]), str(r["ratio"]), r["goal"])
                                    for r in summary], ("metric", "ours", "baseline", "ratio", "goal"))
    print(f"\n  {load_note}; wall {report['wall_s']} s")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
