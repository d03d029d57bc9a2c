"""CityData's SensorThings API against a peer implementation, django-ogc-sensorthings, in the same run.

    .venv/bin/python bench/sta_peer.py [--quick] [--json OUT] [--peer-venv /tmp/peer-venv] [--rows 50000]
                                       [--clients 16] [--seconds 8]

The peer needs its own virtual environment (never the project's):

    python3.11 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install django-ogc-sensorthings uvicorn uvloop httptools

It runs as a generated Django project (the package's README set-up: the v1.1 app, its Django ORM backend and
the data-array extension; UUID ids) on its own SQLite file (WAL, synchronous=FULL, like ours; no spatial
extension needed), served by uvicorn with the same settings as ours, in its own process.

Both sides get ``--streams`` Datastreams and one FeatureOfInterest through their own API, then ``--rows``
observations through their own ``CreateObservations`` in posts of 1,000 (timed: bulk ingest, a bonus figure),
then are measured with wrk, ``--clients`` connections, one side at a time:

* single ``POST Observations`` (Datastream and FeatureOfInterest linked by id; the peer requires a
  FeatureOfInterest), a different stream and time every request;
* ``GET Datastreams(id)/Observations?$top=100``, cycling over the Datastreams.

Goal: ours >= 10x the peer on both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Server,
    free_port,
    lua_get,
    make_token,
    print_table,
    stop_process,
    verdict,
    wait_http,
    write_json,
    wrk,
)

T_FILL = datetime(2025, 1, 1, tzinfo=UTC)
T_SINGLE = datetime(2025, 9, 1, tzinfo=UTC)

SETTINGS = '''
import os
from uuid import UUID
SECRET_KEY = "bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth",
                  "sensorthings.versions.v1_1", "sensorthings.versions.v1_1.backends.django",
                  "sensorthings.versions.v1_1.extensions.dataarray"]
MIDDLEWARE = []
ROOT_URLCONF = "peersite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PEER_DB"],
                         "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                                     "transaction_mode": "IMMEDIATE"}}}
USE_TZ = True
SENSORTHINGS_V1_1_SERVICE_URL = os.environ["PEER_URL"] + "/sensorthings"
SENSORTHINGS_V1_1_BACKEND_ADAPTER = "sensorthings.versions.v1_1.backends.django.adapter.DjangoBackendAdapter"
SENSORTHINGS_V1_1_ID_TYPE = UUID
SENSORTHINGS_V1_1_ID_DELIMITER = "'"
SENSORTHINGS_V1_1_DOCS_ENABLED = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''
URLS = '''
from django.urls import include, path
urlpatterns = [path("sensorthings/", include("sensorthings.versions.v1_1.urls"))]
'''
SERVE = '''
import os, sys, uvicorn
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peersite.settings")
from django.core.asgi import get_asgi_application
config = uvicorn.Config(get_asgi_application(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None,
                        access_log=False, lifespan="off", timeout_graceful_shutdown=5)
uvicorn.Server(config).run()
'''


class Peer:
    """django-ogc-sensorthings in its own process, on its own SQLite file."""

    def __init__(self, venv: Path, root: Path) -> None:
        self.py = str(venv / "bin" / "python")
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base}/sensorthings/v1.1"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("CITYDATA_")},
                    "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "peersite.settings",
                    "PEER_DB": str(root / "peer.db"), "PEER_URL": self.base}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Peer:
        site = self.root / "peersite"
        site.mkdir(parents=True, exist_ok=True)
        (site / "__init__.py").write_text("")
        (site / "settings.py").write_text(SETTINGS)
        (site / "urls.py").write_text(URLS)
        (self.root / "serve_peer.py").write_text(SERVE)
        subprocess.run([self.py, "-m", "django", "migrate", "-v", "0"], env=self.env, cwd=self.root, check=True,
                       timeout=300)
        self.log = open(self.root / "peer.log", "wb")
        self.proc = subprocess.Popen([self.py, str(self.root / "serve_peer.py"), str(self.port)], env=self.env,
                                     cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"{self.api}", proc=self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.log.close()


def thing_body(k: int, streams: int, foi: bool) -> dict[str, Any]:
    return {"name": f"bench thing {k}", "description": "benchmark station",
            "Locations": [{"name": f"loc {k}", "description": "station", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [98.3, 7.9]}}],
            "Datastreams": [{"name": f"ds {k}.{j}", "description": "air temperature",
                             "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
                                                "OM_Measurement",
                             "unitOfMeasurement": {"name": "degree Celsius", "symbol": "degC",
                                                   "definition": "http://unitsofmeasure.org/ucum.html"},
                             "Sensor": {"name": f"sensor {k}.{j}", "description": "thermometer",
                                        "encodingType": "application/pdf", "metadata": "none"},
                             "ObservedProperty": {"name": f"temperature {k}.{j}", "description": "air",
                                                  "definition": "http://example.org/temperature"}}
                            for j in range(streams)]}


FOI = {"name": "bench station", "description": "where the thermometer is", "encodingType": "application/geo+json",
       "feature": {"type": "Point", "coordinates": [98.3, 7.9]}}


def setup(api: str, headers: dict[str, str], streams: int, quote: str) -> tuple[list[str], str]:
    """One Thing with ``streams`` Datastreams (deep insert) and one FeatureOfInterest; returns their ids as
    they appear in URLs and bodies (``quote`` wraps string ids in paths)."""
    with httpx.Client(headers=headers, timeout=60) as c:
        r = c.post(f"{api}/Things", json=thing_body(0, streams, True))
        if r.status_code >= 300:
            raise RuntimeError(f"create Thing: {r.status_code} {r.text[:300]}")
        loc = r.headers.get("location") or r.json()["@iot.selfLink"]
        got = c.get(f"{loc}/Datastreams", params={"$top": "100"})
        got.raise_for_status()
        ids = [v["@iot.id"] for v in got.json()["value"]]
        f = c.post(f"{api}/FeaturesOfInterest", json=FOI)
        if f.status_code >= 300:
            raise RuntimeError(f"create FeatureOfInterest: {f.status_code} {f.text[:300]}")
        foi = f.json()["@iot.id"] if f.content else c.get(f.headers["location"]).json()["@iot.id"]
    return ids, foi


def fill(api: str, headers: dict[str, str], ids: list[Any], foi: Any, rows: int) -> dict[str, Any]:
    per = rows // len(ids)
    bodies = []
    for k, sid in enumerate(ids):
        for start in range(0, per, 1000):
            arr = [[(T_FILL + timedelta(seconds=60 * (start + r))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    ((k * per + start + r) % 4000) / 100.0, foi] for r in range(min(1000, per - start))]
            bodies.append(orjson.dumps([{"Datastream": {"@iot.id": sid},
                                         "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
                                         "dataArray": arr}]))
    started = time.perf_counter()
    with httpx.Client(headers={**headers, "Content-Type": "application/json"}, timeout=300) as c:
        for b in bodies:
            r = c.post(f"{api}/CreateObservations", content=b)
            if r.status_code >= 300 or b'"error"' in r.content:
                raise RuntimeError(f"CreateObservations: {r.status_code} {r.text[:300]}")
    seconds = time.perf_counter() - started
    return {"rows": per * len(ids), "seconds": seconds, "obs_per_s": per * len(ids) / seconds}


def lua_post(prefix: str, headers: dict[str, str], ids: list[Any], foi: Any) -> str:
    idl = ",".join(orjson.dumps(i).decode() for i in ids)
    hdr = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{hdr}
local ids = {{{idl}}}
local foi = {orjson.dumps(foi).decode()}
local base = {int(T_SINGLE.timestamp())}
local i = 0
local function q(v) if type(v) == "string" then return '"' .. v .. '"' end return tostring(v) end
request = function()
  i = i + 1
  local body = string.format('{{"result":%d.25,"phenomenonTime":"%s","Datastream":{{"@iot.id":%s}},' ..
    '"FeatureOfInterest":{{"@iot.id":%s}}}}', i % 40, os.date("!%Y-%m-%dT%H:%M:%SZ", base + i),
    q(ids[(i % #ids) + 1]), q(foi))
  return wrk.format(nil, "{prefix}/Observations", nil, body)
end
"""


def measure(name: str, base: str, prefix: str, headers: dict[str, str], ids: list[Any], foi: Any,
            quote: str, clients: int, seconds: float) -> dict[str, Any]:
    post = lua_post(prefix, headers, ids, foi)
    wrk(base + prefix + "/Observations", post, connections=clients, seconds=1)
    single = wrk(base + prefix + "/Observations", post, connections=clients, seconds=seconds)
    paths = [f"{prefix}/Datastreams({quote}{i}{quote})/Observations?$top=100" for i in ids]
    check = httpx.get(base + paths[0], headers=headers, timeout=60)
    check.raise_for_status()
    got = len(check.json()["value"])
    lua = lua_get(paths, headers)
    wrk(base + paths[0], lua, connections=clients, seconds=1)
    top100 = wrk(base + paths[0], lua, connections=clients, seconds=seconds)
    top100["values"] = got
    return {"name": name, "post": single, "top100": top100}


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--peer-venv", type=Path, default=Path("/tmp/peer-venv"))
    parser.add_argument("--rows", type=int, default=None, help="observations per side (default 50k, quick 10k)")
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None, help="per measure (default 8, quick 3)")
    args = parser.parse_args()
    rows = args.rows or (10_000 if args.quick else 50_000)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    report: dict[str, Any] = {"rows": rows, "streams": args.streams, "clients": args.clients, "seconds": seconds}
    if not (args.peer_venv / "bin" / "python").exists():
        sys.exit(f"no peer virtual environment at {args.peer_venv}; see the module docstring")
    with tempfile.TemporaryDirectory(prefix="citydata-sta-peer-") as tmp:
        root = Path(tmp)
        token = make_token(root / "ours")
        auth = {"Authorization": f"Bearer {token}"}
        with Server(root / "ours") as srv:
            ids, foi = setup(f"{srv.base}/v1.1", auth, args.streams, "")
            report["ours_fill"] = fill(f"{srv.base}/v1.1", auth, ids, foi, rows)
            ours = measure("ours", srv.base, "/v1.1", auth, ids, foi, "", args.clients, seconds)
        with Peer(args.peer_venv, root / "peer") as peer:
            pids, pfoi = setup(peer.api, {}, args.streams, "'")
            report["peer_fill"] = fill(peer.api, {}, pids, pfoi, rows)
            theirs = measure("peer", peer.base, "/sensorthings/v1.1", {}, pids, pfoi, "'", args.clients, seconds)
    report["ours"], report["peer"] = ours, theirs
    report["ratio_post"] = ours["post"]["rps"] / theirs["post"]["rps"]
    report["ratio_top100"] = ours["top100"]["rps"] / theirs["top100"]["rps"]
    report["ratio_fill"] = report["ours_fill"]["obs_per_s"] / report["peer_fill"]["obs_per_s"]
    print_table(f"CityData vs django-ogc-sensorthings (SQLite both, {args.clients} connections, {rows:,} "
                f"observations over {args.streams} Datastreams each)", [
        ("POST Observations", f"{ours['post']['rps']:,.0f} req/s", f"{theirs['post']['rps']:,.0f} req/s",
         f"{report['ratio_post']:.2f}", verdict(report["ratio_post"], 10)),
        ("GET Datastreams(id)/Observations?$top=100", f"{ours['top100']['rps']:,.0f} req/s",
         f"{theirs['top100']['rps']:,.0f} req/s", f"{report['ratio_top100']:.2f}",
         verdict(report["ratio_top100"], 10)),
        ("CreateObservations x1000 (one client)", f"{report['ours_fill']['obs_per_s']:,.0f} obs/s",
         f"{report['peer_fill']['obs_per_s']:,.0f} obs/s", f"{report['ratio_fill']:.2f}", "(no goal)"),
    ], ("measure", "ours", "peer", "ours/peer", "goal"))
    print(f"\n  non-2xx: ours POST {ours['post']['non_2xx']}, GET {ours['top100']['non_2xx']}; peer POST "
          f"{theirs['post']['non_2xx']}, GET {theirs['top100']['non_2xx']}; values per GET: ours "
          f"{ours['top100']['values']}, peer {theirs['top100']['values']}")
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
