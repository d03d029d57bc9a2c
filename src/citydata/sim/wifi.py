"""The WiFi feed: the city's free hotspots see the simulated tourists and residents come and go.

* hotspots: the platform's registry (``GET /api/v1/wifi/public/hotspots``, the same 1,000 placed along the
  beaches, the Old Town, the piers and the bus stops);
* tourists: the tourist feed's travellers (``citydata.sim.tourists``), each with a phone that joins the free WiFi
  at most sights (a hotspot within 150 m of where the tourist is) and leaves when the tourist moves on;
* residents: a fixed population with a few favourite hotspots each (Old Town, bus stops, the beach towns where
  they work), online more by day and in the evening;
* records: hotspots run by the Smart Bus send hostapd ``AP-STA-CONNECTED`` / ``AP-STA-DISCONNECTED`` syslog lines,
  the others RADIUS accounting (Start, Interim-Update every 10 simulated minutes, Stop) as JSON lines, both
  through ``POST /api/v1/wifi/events`` with a device token;
* about 55 % of phones use a randomised (locally administered) MAC, as current phones do on open networks.

Time: like the tourist feed, the simulation runs ``speed`` times faster than the wall clock and records are
stamped with the wall clock (never in the future), so Acct-Session-Time is wall time: a 40-minute visit at 30x
is an 80-second session. The same seed gives the same people and the same choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

if TYPE_CHECKING:
    from citydata.sim.tourists import TouristFeed

log = logging.getLogger(__name__)
_BKK = ZoneInfo("Asia/Bangkok")
NEAR_M = 150.0
CELL_DEG = 0.002
STEP_S = 300.0                 # simulated seconds between residents' decisions
INTERIM_S = 600.0              # simulated seconds between Interim-Updates
# share of residents online at each local hour (relative)
RESIDENT_CURVE = [0.2, 0.1, 0.05, 0.05, 0.05, 0.2, 0.6, 1.0, 1.0, 0.8, 0.7, 0.8, 1.2, 1.0, 0.8, 0.8, 0.9, 1.2,
                  1.5, 1.6, 1.5, 1.2, 0.8, 0.4]
HOME_ZONES = {"old_town": 0.35, "bus_stops": 0.25, "patong": 0.15, "kata": 0.07, "karon": 0.07,
              "rassada_pier": 0.04, "chalong_pier": 0.04, "rawai": 0.03}


def _mac(rng: random.Random, randomised: bool) -> str:
    octets = [rng.randrange(256) for _ in range(6)]
    octets[0] = (octets[0] & 0xFC) | (0x02 if randomised else 0x00)     # unicast; local bit per kind
    return ":".join(f"{o:02x}" for o in octets)


@dataclass
class Phone:
    mac: str
    uses_wifi: bool
    offset: tuple[float, float] = (0.0, 0.0)     # where in a place this person tends to be (metres)
    hotspot: dict[str, Any] | None = None
    session: str | None = None
    started: datetime | None = None
    next_interim: float = 0.0


@dataclass
class Resident:
    phone: Phone
    favourites: list[dict[str, Any]]
    until: float = 0.0


@dataclass
class WifiStats:
    sessions: int = 0
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    tourists_seen: int = 0
    by_format: dict[str, int] = field(default_factory=dict)


class WifiFeed:
    def __init__(self, seed: int = 7, *, speed: float = 30.0, tourists: TouristFeed | None = None,
                 residents: int = 1000, token: str | None = None,
                 wall_now: Callable[[], datetime] | None = None) -> None:
        self.rng = random.Random(seed * 7919 + 83)
        self.speed = speed
        self.tourist_feed = tourists
        self.resident_count = residents
        self.token = token
        self.wall_now = wall_now or (lambda: datetime.now(UTC))
        self._start = self.wall_now()
        self.hotspots: list[dict[str, Any]] = []
        self._grid: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.residents: list[Resident] = []
        self.phones: dict[int, Phone] = {}          # tourist number -> phone
        self.stats = WifiStats()
        self._next_step = 0.0
        self._sid = 0

    # -- set-up ----------------------------------------------------------------------------------------------
    async def setup(self, http: Any) -> None:
        if self.token is None:
            r = await http.post("/api/v1/tokens", json={"role": "device", "name": "sim wifi controllers"})
            if r.status_code != 201:
                raise RuntimeError(f"could not create a device token: HTTP {r.status_code}")
            self.token = r.json()["token"]
        r = await http.get("/api/v1/wifi/hotspots", params={"limit": 10_000, "active": "true"})
        if r.status_code != 200:
            raise RuntimeError(f"could not read the hotspots: HTTP {r.status_code}")
        self.set_hotspots(r.json()["items"])

    def set_hotspots(self, hotspots: list[dict[str, Any]]) -> None:
        self.hotspots = sorted(hotspots, key=lambda h: h["id"])
        self._grid.clear()
        for h in self.hotspots:
            self._grid.setdefault(self._cell(h["lon"], h["lat"]), []).append(h)
        by_zone: dict[str, list[dict[str, Any]]] = {}
        for h in self.hotspots:
            by_zone.setdefault(h["zone"], []).append(h)
        zones = [z for z in HOME_ZONES if z in by_zone] or sorted(by_zone)
        weights = [HOME_ZONES.get(z, 1.0) for z in zones]
        self.residents = []
        for _ in range(self.resident_count if zones else 0):
            zone = self.rng.choices(zones, weights)[0]
            favs = self.rng.sample(by_zone[zone], min(3, len(by_zone[zone])))
            phone = Phone(_mac(self.rng, self.rng.random() < 0.5), True)
            self.residents.append(Resident(phone, favs))

    @staticmethod
    def _cell(lon: float, lat: float) -> tuple[int, int]:
        return math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG)

    def nearest(self, lon: float, lat: float) -> dict[str, Any] | None:
        cx, cy = self._cell(lon, lat)
        kx = 111_195.0 * math.cos(math.radians(lat))
        best, best_d = None, NEAR_M
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for h in self._grid.get((cx + dx, cy + dy), ()):
                    d = math.hypot((h["lon"] - lon) * kx, (h["lat"] - lat) * 111_195.0)
                    if d <= best_d:
                        best, best_d = h, d
        return best

    # -- records ---------------------------------------------------------------------------------------------
    def _stamp(self, sim_t: float) -> datetime:
        return min(self.wall_now(), self._start + timedelta(seconds=sim_t / self.speed))

    def _connect(self, phone: Phone, hotspot: dict[str, Any], sim_t: float, out: dict[str, list[str]]) -> None:
        self._sid += 1
        phone.hotspot, phone.session, phone.started = hotspot, f"{self._sid:08X}", self._stamp(sim_t)
        phone.next_interim = sim_t + INTERIM_S
        self.stats.sessions += 1
        self._record(phone, "Start", sim_t, out)

    def _disconnect(self, phone: Phone, sim_t: float, out: dict[str, list[str]]) -> None:
        if phone.hotspot is not None:
            self._record(phone, "Stop", sim_t, out)
        phone.hotspot = phone.session = phone.started = None

    def _record(self, phone: Phone, status: str, sim_t: float, out: dict[str, list[str]]) -> None:
        assert phone.hotspot is not None and phone.started is not None
        at = self._stamp(sim_t)
        h = phone.hotspot
        if h["operator"] == "smart_bus":          # OpenWrt APs on the bus shelters: hostapd over syslog
            if status == "Interim-Update":
                return
            event = "AP-STA-CONNECTED" if status == "Start" else "AP-STA-DISCONNECTED"
            out["syslog"].append(f"<30>1 {at.isoformat()} {h['id']} hostapd - - - wlan0: {event} {phone.mac}")
        else:
            calling = phone.mac.upper().replace(":", "-")
            rec: dict[str, Any] = {"Acct-Status-Type": status, "Calling-Station-Id": calling,
                                   "Called-Station-Id": "02-00-5E-00-00-01:Phuket-Free-WiFi",
                                   "NAS-Identifier": h["id"], "Acct-Session-Id": phone.session,
                                   "Event-Timestamp": at.isoformat()}
            if status != "Start":
                rec["Acct-Session-Time"] = max(0, round((at - phone.started).total_seconds()))
                rec["Acct-Input-Octets"] = self.rng.randrange(10_000, 5_000_000)
                rec["Acct-Output-Octets"] = self.rng.randrange(50_000, 50_000_000)
            out["jsonl"].append(orjson.dumps(rec).decode())

    # -- the step --------------------------------------------------------------------------------------------
    async def step(self, http: Any, sim_t: float) -> None:
        out: dict[str, list[str]] = {"jsonl": [], "syslog": []}
        self._tourists(sim_t, out)
        while self._next_step <= sim_t:
            self._residents(self._next_step, out)
            self._next_step += STEP_S
        for phone in [*self.phones.values(), *(r.phone for r in self.residents)]:
            if phone.hotspot is not None and sim_t >= phone.next_interim:
                self._record(phone, "Interim-Update", sim_t, out)
                phone.next_interim = sim_t + INTERIM_S
        await self._send(http, out)

    def _tourists(self, sim_t: float, out: dict[str, list[str]]) -> None:
        feed = self.tourist_feed
        if feed is None:
            return
        for tourist in feed.tourists:
            phone = self.phones.get(tourist.n)
            if phone is None:
                rng = random.Random(tourist.n * 1_000_003 + 17)
                phone = Phone(_mac(rng, rng.random() < 0.6), rng.random() < 0.75,
                              (rng.gauss(0, 150), rng.gauss(0, 150)))
                self.phones[tourist.n] = phone
                self.stats.tourists_seen += 1
            if tourist.departed or not phone.uses_wifi or tourist.silenced:
                self._disconnect(phone, sim_t, out)
                continue
            lon, lat = tourist.position(sim_t)
            lon += phone.offset[0] / (111_195.0 * math.cos(math.radians(lat)))
            lat += phone.offset[1] / 111_195.0
            here = self.nearest(lon, lat)
            if phone.hotspot is not None and (here is None or here["id"] != phone.hotspot["id"]):
                self._disconnect(phone, sim_t, out)
            if here is not None and phone.hotspot is None:
                self._connect(phone, here, sim_t, out)

    def _residents(self, sim_t: float, out: dict[str, list[str]]) -> None:
        local = (self._start + timedelta(seconds=sim_t)).astimezone(_BKK)
        p_start = 0.04 * RESIDENT_CURVE[local.hour]
        for r in self.residents:
            if r.phone.hotspot is not None:
                if sim_t >= r.until:
                    self._disconnect(r.phone, sim_t, out)
            elif self.rng.random() < p_start:
                self._connect(r.phone, self.rng.choice(r.favourites), sim_t, out)
                r.until = sim_t + self.rng.expovariate(1 / 2400.0) + 60

    async def _send(self, http: Any, out: dict[str, list[str]]) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/x-ndjson"}
        for fmt, lines in out.items():
            if not lines:
                continue
            self.stats.records += len(lines)
            self.stats.by_format[fmt] = self.stats.by_format.get(fmt, 0) + len(lines)
            try:
                r = await http.post("/api/v1/wifi/events", params={"format": fmt}, content="\n".join(lines),
                                    headers=headers)
            except Exception as err:        # the platform is restarting: the feed goes on
                self.stats.errors += 1
                log.warning("wifi feed: %d records not sent (%s)", len(lines), type(err).__name__)
                continue
            if r.status_code == 202:
                body = r.json()
                self.stats.accepted += int(body["accepted"])
                self.stats.rejected += int(body["rejected"])
            else:
                self.stats.errors += 1

    async def run(self, http: Any, stop: asyncio.Event, deadline: float | None = None,
                  tick_s: float = 1.0) -> WifiStats:
        await self.setup(http)
        began = time.monotonic()
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                await self.step(http, (time.monotonic() - began) * self.speed)
            except Exception as err:
                self.stats.errors += 1
                log.warning("wifi feed step failed: %s", type(err).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
        # everyone still online leaves when the simulation ends
        out: dict[str, list[str]] = {"jsonl": [], "syslog": []}
        sim_t = (time.monotonic() - began) * self.speed
        for phone in [*self.phones.values(), *(r.phone for r in self.residents)]:
            self._disconnect(phone, sim_t, out)
        with contextlib.suppress(Exception):
            await self._send(http, out)
        return self.stats

