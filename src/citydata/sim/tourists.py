"""The tourist feed: Sandbox tourists arrive at the five checkpoints, stay at real places, move between beaches
and sights, report every 30 minutes through the app API, and depart. An external HTTP client, like the
checkpoint system and the phones:

* arrivals through ``POST /api/v1/tracking/arrivals`` with an immigration token (created through the tokens API
  with the simulator's admin token when none is given), most by air (HKT), on a daily curve of flights and
  ferries;
* the app flow: ``POST /tracking/enrol`` with the code, then ``POST /tracking/pings`` with the device token;
* movement between sights at door-to-door speeds drawn from real Bangkok tourist taxi trips
  (``data/tourist_trips_bangkok_2019.csv``), with pauses by kind of place;
* reports every 30 simulated minutes: some phones buffer and send late batches, some send duplicates, a few go
  silent (the overdue timer must notice), a few leave over the Sarasin bridge to Phang Nga or by boat from
  Rassada towards Phi Phi; all depart at the end of their stay.

Time: the simulation runs ``speed`` times faster than the wall clock, but fix times are stamped with the wall
clock (the platform refuses future fixes), so a report goes out every ``1800 / speed`` wall seconds and a
tourist's apparent speed is ``speed`` times its real one. Run the platform with ``platform_settings(speed)``
(report interval, grace, dwell, still-outside period, lateness divided by ``speed``; the speed limit multiplied)
so its timers and checks see the same world; the report interval must stay ≥ 60 s, so ``speed`` ≤ 30. The same
seed gives the same tourists.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)

REPORT_S = 1800.0
# Checkpoints (lon, lat) and their share of arrivals: most tourists fly in.
CHECKPOINTS = {"HKT": ((98.30655, 8.10846), 0.86), "THA_CHATCHAI": ((98.2974, 8.2018), 0.07),
               "RASSADA": ((98.4013, 7.8557), 0.03), "AO_CHALONG": ((98.3613, 7.8281), 0.02),
               "AO_PO": ((98.443089, 8.069079), 0.02)}
# Where tourists stay, and the sights they go to (lon, lat, kind)
STAYS = {"patong": ((98.2913, 7.8875), 0.40), "karon": ((98.2933, 7.8478), 0.20),
         "kata": ((98.3001, 7.8187), 0.20), "old_town": ((98.3880, 7.8840), 0.20)}
SIGHTS = [(98.2913, 7.8875, "beach"), (98.29513, 7.89407, "nightlife"), (98.2933, 7.8478, "beach"),
          (98.3001, 7.8187, "beach"), (98.3218, 7.7721, "beach"), (98.2806, 7.9754, "beach"),
          (98.2805, 7.9475, "beach"), (98.3880, 7.8840, "old_town"), (98.3120, 7.8276, "sight")]
PAUSE_H = {"beach": (1.5, 4.0), "nightlife": (2.0, 5.0), "old_town": (1.0, 3.0), "sight": (0.5, 1.5),
           "hotel": (6.0, 12.0)}
SARASIN_EXIT = [(98.3000, 8.1500), (98.2974, 8.2018), (98.2900, 8.2200), (98.2800, 8.3000), (98.2700, 8.4500)]
BOAT_EXIT = [(98.4013, 7.8557), (98.5000, 7.8000), (98.6500, 7.7600), (98.7684, 7.7407)]
# Arrivals per hour of day (local time), relative: the flight banks at midday and in the evening.
DAILY_CURVE = [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 1.6, 1.6, 1.5, 1.3, 1.2, 1.1, 1.2, 1.4,
               1.5, 1.4, 1.1, 0.8, 0.5]
NATIONALITIES = ["DEU", "GBR", "USA", "FRA", "RUS", "AUS", "SWE", "CHN", "IND", "ISR", "NLD", "CHE"]


def platform_settings(speed: float) -> dict[str, Any]:
    """The tracking settings that match a feed running ``speed`` times faster than the wall clock."""
    if not 1 <= speed <= 30:
        raise ValueError("the tourist feed runs at 1 to 30 times real time")
    return {"tracking_report_interval_s": int(REPORT_S / speed), "tracking_overdue_grace_s": int(600 / speed),
            "tracking_dwell_s": int(600 / speed), "tracking_still_outside_s": max(60, int(3600 / speed)),
            "tracking_lateness_s": int(7200 / speed), "tracking_max_speed_kmh": 300.0 * speed,
            "tracking_overdue_check_s": max(1.0, 30.0 / speed)}


def trip_library() -> list[tuple[float, float]]:
    """(distance_m, duration_s) of the real tourist taxi trips."""
    text = resources.files("citydata.sim").joinpath("data/tourist_trips_bangkok_2019.csv").read_text(
        encoding="utf-8")
    return [(float(r["distance_m"]), float(r["duration_s"])) for r in csv.DictReader(text.splitlines())]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    kx = 111_195.0 * math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot((b[0] - a[0]) * kx, (b[1] - a[1]) * 111_195.0)


@dataclass
class Leg:
    """Moving from ``a`` to ``b`` between sim times ``t0`` and ``t1``, then pausing until ``until``."""

    a: tuple[float, float]
    b: tuple[float, float]
    t0: float
    t1: float
    until: float


@dataclass
class Tourist:
    n: int
    checkpoint: str
    stay: str
    arrives: float                 # sim seconds since the start
    departs: float
    fate: str                      # stay, silent, sarasin, boat
    phone: str                     # normal, late, duplicate
    traveller_id: str | None = None
    token: str | None = None
    legs: list[Leg] = field(default_factory=list)
    next_report: float = 0.0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    departed: bool = False
    silenced: bool = False

    def position(self, t: float) -> tuple[float, float]:
        for leg in self.legs:
            if t <= leg.until:
                if t >= leg.t1:
                    return leg.b
                if t <= leg.t0:
                    return leg.a
                f = (t - leg.t0) / (leg.t1 - leg.t0)
                return leg.a[0] + (leg.b[0] - leg.a[0]) * f, leg.a[1] + (leg.b[1] - leg.a[1]) * f
        return self.legs[-1].b if self.legs else CHECKPOINTS[self.checkpoint][0]


@dataclass
class TouristStats:
    arrivals: int = 0
    enrolled: int = 0
    pings_sent: int = 0
    pings_accepted: int = 0
    batches: int = 0
    duplicates: int = 0
    silent: int = 0
    left: int = 0
    departures: int = 0
    errors: int = 0
    by_checkpoint: dict[str, int] = field(default_factory=dict)


class TouristModel:
    """Who arrives when, where they stay and how they move (pure, seeded)."""

    def __init__(self, seed: int, *, per_hour: float = 20.0, stay_days: tuple[float, float] = (2.0, 7.0)) -> None:
        self.rng = random.Random(seed)
        self.per_hour = per_hour
        self.stay_days = stay_days
        self.trips = trip_library()
        self.count = 0

    def pick(self, table: dict[str, tuple[Any, float]]) -> str:
        names = list(table)
        return self.rng.choices(names, weights=[table[n][1] for n in names])[0]

    def arrivals_between(self, t0: float, t1: float, start: datetime) -> list[Tourist]:
        """The tourists arriving in sim seconds [t0, t1): a Poisson process on the daily curve."""
        out: list[Tourist] = []
        t = t0
        while t < t1:
            hour = (start + timedelta(seconds=t)).astimezone(UTC).hour
            rate = self.per_hour * DAILY_CURVE[(hour + 7) % 24] / 3600.0      # Phuket is UTC+7
            t += self.rng.expovariate(max(rate, 1e-6))
            if t < t1:
                out.append(self.new_tourist(t))
        return out

    def new_tourist(self, at: float) -> Tourist:
        self.count += 1
        r = self.rng.random()
        fate = "silent" if r < 0.03 else "sarasin" if r < 0.06 else "boat" if r < 0.08 else "stay"
        p = self.rng.random()
        phone = "late" if p < 0.10 else "duplicate" if p < 0.15 else "normal"
        days = self.rng.uniform(*self.stay_days)
        tourist = Tourist(self.count, self.pick(CHECKPOINTS), self.pick(STAYS), at, at + days * 86400, fate, phone)
        tourist.next_report = at + self.rng.uniform(60, REPORT_S)
        self.plan(tourist)
        return tourist

    def travel_s(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        distance, duration = self.rng.choice(self.trips)
        speed = distance / duration                     # m/s, door to door in real traffic
        return max(60.0, _metres(a, b) / speed)

    def plan(self, tourist: Tourist) -> None:
        """The whole stay: checkpoint → hotel, sights and back, then the exit or the departure checkpoint."""
        here = CHECKPOINTS[tourist.checkpoint][0]
        hotel = STAYS[tourist.stay][0]
        t = tourist.arrives
        target, kind = hotel, "hotel"
        end = tourist.departs
        leave_at = tourist.arrives + self.rng.uniform(0.3, 0.8) * (end - tourist.arrives)
        while t < end:
            if tourist.fate in ("sarasin", "boat") and t >= leave_at:
                route = SARASIN_EXIT if tourist.fate == "sarasin" else BOAT_EXIT
                for point in route:
                    dt = self.travel_s(here, point) if tourist.fate == "sarasin" else _metres(here, point) / 8.0
                    tourist.legs.append(Leg(here, point, t, t + dt, t + dt))
                    here, t = point, t + dt
                tourist.legs[-1].until = end
                return
            dt = self.travel_s(here, target)
            lo, hi = PAUSE_H[kind]
            pause = self.rng.uniform(lo, hi) * 3600
            tourist.legs.append(Leg(here, target, t, t + dt, t + dt + pause))
            here, t = target, t + dt + pause
            if kind == "hotel":
                lon, lat, kind = self.rng.choice(SIGHTS)
                target = (lon, lat)
            else:
                target, kind = hotel, "hotel"
        out = CHECKPOINTS[tourist.checkpoint][0]
        dt = self.travel_s(here, out)
        tourist.legs.append(Leg(here, out, end - dt, end, end))

    def fix(self, tourist: Tourist, t: float, stamp: datetime) -> dict[str, Any]:
        lon, lat = tourist.position(t)
        acc = self.rng.choice([5.0, 8.0, 12.0, 20.0, 35.0, 65.0])
        jitter = acc / 111_195.0 * 0.5
        return {"t": stamp.isoformat(), "lat": round(lat + self.rng.gauss(0, jitter), 6),
                "lon": round(lon + self.rng.gauss(0, jitter), 6), "accuracy_m": acc,
                "battery": round(self.rng.uniform(15, 100)), "source": "gps"}

    def arrival_body(self, tourist: Tourist, at: datetime) -> dict[str, Any]:
        rng = self.rng
        test = "positive" if rng.random() < 0.01 else "negative"
        goods = "held" if rng.random() < 0.01 else "cleared"
        return {"checkpoint": tourist.checkpoint, "arrived_at": at.isoformat(),
                "traveller": {"name": f"Sim Tourist {tourist.n}", "passport_no": f"SIM{tourist.n:07d}",
                              "nationality": rng.choice(NATIONALITIES),
                              "birth_date": f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-"
                                            f"{rng.randint(1, 28):02d}",
                              "phone": f"+66{rng.randint(600000000, 999999999)}"},
                "screening": {"health": "pass", "test_result": test, "vaccinated": True, "goods": goods},
                "hotel_id": f"hotel-{tourist.stay}-{rng.randint(1, 12)}",
                "consent": {"tracking": True, "at": at.isoformat()}}


class TouristFeed:
    """Drives the model against a platform over HTTP. ``step(http, sim_t)`` does everything due by ``sim_t``."""

    def __init__(self, seed: int = 7, *, per_hour: float = 20.0, speed: float = 30.0,
                 immigration_token: str | None = None, stay_days: tuple[float, float] = (2.0, 7.0),
                 wall_now: Callable[[], datetime] | None = None) -> None:
        self.model = TouristModel(seed, per_hour=per_hour, stay_days=stay_days)
        self.speed = speed
        self.immigration_token = immigration_token
        self.wall_now = wall_now or (lambda: datetime.now(UTC))
        self.tourists: list[Tourist] = []
        self.stats = TouristStats()
        self._sim_t = 0.0
        self._start = self.wall_now()

    async def setup(self, http: Any) -> None:
        """An immigration token, created with the simulator's (admin) token when none was given."""
        if self.immigration_token is None:
            r = await http.post("/api/v1/tokens", json={"role": "immigration", "name": "sim checkpoints"})
            if r.status_code != 201:
                raise RuntimeError(f"could not create an immigration token: HTTP {r.status_code}")
            self.immigration_token = r.json()["token"]

    def _stamp(self, sim_t: float) -> datetime:
        """Wall-clock time of a sim instant (the fix time the platform sees), never in the future."""
        return min(self.wall_now(), self._start + timedelta(seconds=sim_t / self.speed))

    async def step(self, http: Any, sim_t: float) -> None:
        for tourist in self.model.arrivals_between(self._sim_t, sim_t, self._start):
            await self._arrive(http, tourist)
        self._sim_t = sim_t
        for tourist in self.tourists:
            if tourist.departed or tourist.token is None:
                continue
            if sim_t >= tourist.departs:
                await self._depart(http, tourist)
                continue
            while tourist.next_report <= sim_t:
                await self._report(http, tourist, tourist.next_report)
                tourist.next_report += REPORT_S * self.model.rng.uniform(0.95, 1.05)

    async def _arrive(self, http: Any, tourist: Tourist) -> None:
        headers = {"Authorization": f"Bearer {self.immigration_token}"}
        r = await http.post("/api/v1/tracking/arrivals", headers=headers,
                            json=self.model.arrival_body(tourist, self._stamp(tourist.arrives)))
        if r.status_code != 201:
            self.stats.errors += 1
            log.warning("simulated arrival refused: HTTP %s", r.status_code)
            return
        body = r.json()
        tourist.traveller_id = body["traveller_id"]
        self.stats.arrivals += 1
        self.stats.by_checkpoint[tourist.checkpoint] = self.stats.by_checkpoint.get(tourist.checkpoint, 0) + 1
        r = await http.post("/api/v1/tracking/enrol", json={"enrolment_code": body["enrolment_code"]},
                            headers={"Authorization": ""})
        if r.status_code == 200:
            tourist.token = r.json()["device_token"]
            self.stats.enrolled += 1
        else:
            self.stats.errors += 1
        self.tourists.append(tourist)

    async def _report(self, http: Any, tourist: Tourist, sim_t: float) -> None:
        if tourist.fate == "silent" and sim_t > tourist.arrives + 6 * 3600:
            if not tourist.silenced:                     # the phone dies (or the app is removed)
                tourist.silenced = True
                self.stats.silent += 1
            return
        tourist.buffer.append(self.model.fix(tourist, sim_t, self._stamp(sim_t)))
        if tourist.phone == "late" and len(tourist.buffer) < 3 and self.model.rng.random() < 0.7:
            return                                       # offline: keep buffering
        batch = list(tourist.buffer)
        self.model.rng.shuffle(batch)                    # buffered reports arrive out of order
        await self._send(http, tourist, batch)
        if tourist.phone == "duplicate" and self.model.rng.random() < 0.3:
            await self._send(http, tourist, batch)       # a retry after a lost answer
            self.stats.duplicates += len(batch)
        tourist.buffer.clear()

    async def _send(self, http: Any, tourist: Tourist, batch: list[dict[str, Any]]) -> None:
        r = await http.post("/api/v1/tracking/pings", json={"pings": batch},
                            headers={"Authorization": f"Bearer {tourist.token}"})
        self.stats.pings_sent += len(batch)
        self.stats.batches += len(batch) > 1
        if r.status_code == 202:
            self.stats.pings_accepted += int(r.json()["accepted"])
        else:
            self.stats.errors += 1

    async def _depart(self, http: Any, tourist: Tourist) -> None:
        tourist.departed = True
        if tourist.fate in ("sarasin", "boat"):
            self.stats.left += 1
            return                                       # they left without passing a checkpoint
        r = await http.post("/api/v1/tracking/departures", headers={
            "Authorization": f"Bearer {self.immigration_token}"}, json={
            "traveller_id": tourist.traveller_id, "checkpoint": tourist.checkpoint,
            "departed_at": self._stamp(tourist.departs).isoformat()})
        if r.status_code == 200:
            self.stats.departures += 1
        else:
            self.stats.errors += 1

    async def run(self, http: Any, stop: asyncio.Event, deadline: float | None = None,
                  tick_s: float = 1.0) -> TouristStats:
        """Step every ``tick_s`` wall seconds until ``stop`` is set or the wall-clock ``deadline`` passes."""
        await self.setup(http)
        began = time.monotonic()
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                await self.step(http, (time.monotonic() - began) * self.speed)
            except Exception as err:                     # a feed keeps going through platform hiccups
                self.stats.errors += 1
                log.warning("tourist feed step failed: %s", type(err).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
        return self.stats
