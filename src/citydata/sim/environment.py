"""The environment feed: rain gauges, canal water levels and dissolved oxygen, driven by real series.

Every simulated 10 minutes each sensor of the fleet reports one value:

* **rain** (mm per 10 minutes): the real daily totals of the gauge's own ThaiWater station (Phuket, 2022 monsoon
  season), with the days missing from ThaiWater taken from TMD's PHUKET_AIRPORT station (2020), disaggregated to
  10-minute steps with a seeded convective-burst pattern (afternoon and evening cells, exponential decay). The
  replayed days' totals are exact. On top come storm cells: one heavy cell early in every run (above
  ``RAIN_1H_ALERT_MM`` in an hour and ``RAIN_24H_ALERT_MM`` in 24 hours at its gauge, weaker and later at the
  others), then seeded monsoon cells on most simulated days;
* **water level** (m) in the canals: a base level from the real Sandy Creek logger series (its shape) scaled to
  the Rangsit canal's range, plus the response to the upstream rain (the two nearest gauges) through a cascade
  of two linear reservoirs: the level rises after the rain with a lag and recedes exponentially;
* **dissolved oxygen** (mg/L): the real Sandy Creek sonde series, scaled to coastal water, each probe replaying
  another stretch of it, with one dip below ``DO_LOW_MG_L`` at one beach a few hours after the storm.

Replay is time-shifted: step ``k`` has phenomenonTime ``start + k * 10 min`` in simulated time. Everything is
deterministic for the seed and the start time (day boundaries follow Phuket's local midnight).
"""

from __future__ import annotations

import csv
import functools
import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from statistics import median
from typing import Any

import orjson

from citydata.errors import CityDataError
from citydata.sim.devices import SimDevice, rain_stations

STEP = timedelta(minutes=10)
STEP_S = 600.0
STEPS_PER_DAY = 144
LOCAL = timezone(timedelta(hours=7))   # Phuket (no daylight saving)
RAIN_1H_ALERT_MM = 30.0                # the early storm exceeds both at its gauge
RAIN_24H_ALERT_MM = 90.0
DO_LOW_MG_L = 4.0
FIRST_STORM_STEP = 3                   # the heavy cell starts 30 simulated minutes into a run
# The early storm at its centre gauge, mm per 10 minutes: 69 mm in its wettest hour, 102 mm in all.
FIRST_STORM_MM = (3.0, 8.0, 15.0, 18.0, 12.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0, 3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0)
STORM_DECAY_KM = 6.0                   # cells weaken with distance from their centre ...
STORM_SPEED_KM_PER_STEP = 3.3          # ... and arrive later (about 20 km/h)
RESERVOIR_K_STEPS = 3.0                # linear reservoir constant (two in series: the level peaks ~30 min late)
LEVEL_GAIN_M = 0.25                    # level rise (m) per mm per step of routed runoff
WARM_UP_STEPS = STEPS_PER_DAY          # the reservoirs run one simulated day before the start
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


@dataclass(frozen=True)
class SensorKind:
    """What a kind of device measures, as SensorThings entities (sensor kinds as data)."""

    kind: str
    quantity: str
    description: str
    unit: dict[str, str]
    observed_property: dict[str, str]
    sensor: dict[str, str]


KINDS: dict[str, SensorKind] = {k.kind: k for k in (
    SensorKind("rain_gauge", "Rainfall", "Rain in the 10 minutes before phenomenonTime (mm per 10 minutes)",
               {"name": "millimetre", "symbol": "mm", "definition": "http://unitsofmeasure.org/ucum.html#mm"},
               {"name": "Rainfall", "definition": "http://vocabs.lter-europe.net/EnvThes/22095",
                "description": "Depth of rain collected in the interval"},
               {"name": "Tipping-bucket rain gauge", "description": "Telemetry tipping-bucket rain gauge, 0.1 mm",
                "encodingType": "text/plain", "metadata": "ThaiWater-style telemetry rain gauge"}),
    SensorKind("water_level", "Water level", "Canal water level above the gauge datum (m), every 10 minutes",
               {"name": "metre", "symbol": "m", "definition": "http://unitsofmeasure.org/ucum.html#m"},
               {"name": "Water level", "definition": "http://vocabs.lter-europe.net/EnvThes/21541",
                "description": "Height of the water surface above the gauge datum"},
               {"name": "Radar water-level sensor", "description": "Non-contact radar level sensor over a canal",
                "encodingType": "text/plain", "metadata": "radar level sensor, 1 mm resolution"}),
    SensorKind("dissolved_oxygen", "Dissolved oxygen", "Dissolved oxygen concentration (mg/L), every 10 minutes",
               {"name": "milligram per litre", "symbol": "mg/L", "definition": "http://unitsofmeasure.org/ucum.html#mg/L"},
               {"name": "Dissolved oxygen", "definition": "http://vocabs.lter-europe.net/EnvThes/20353",
                "description": "Mass concentration of oxygen dissolved in the water"},
               {"name": "Optical dissolved-oxygen probe", "description": "Luminescent DO sonde at a beach or pier",
                "encodingType": "text/plain", "metadata": "optical DO sonde, 0.01 mg/L"}),
)}


# -- the real series ---------------------------------------------------------------------------------------------

def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("citydata.sim").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def daily_rain_library() -> tuple[tuple[date, ...], dict[str, tuple[float, ...]]]:
    """Per ThaiWater station, the daily rain (mm) of 2022-05-27 .. 2022-08-29. Days the ThaiWater portal did not
    publish are filled from TMD PHUKET_AIRPORT on the same day of 2020; on published days a station absent
    from the list had no rain."""
    thai = _rows("thaiwater_phuket_rain_24h_2022.csv")
    tmd = {r["date"]: float(r["prec"]) for r in _rows("tmd_phuket_daily_weather_2020_2021.csv")
           if r["station"] == "PHUKET_AIRPORT" and r["prec"] not in ("", "-")}
    published: dict[str, dict[str, float]] = {}
    for r in thai:
        published.setdefault(r["date"], {})[r["station"]] = float(r["rain_24h_mm"])
    first, last = date.fromisoformat(min(published)), date.fromisoformat(max(published))
    days = tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
    stations = sorted({r["station"] for r in thai})
    out: dict[str, tuple[float, ...]] = {}
    for station in stations:
        values = []
        for day in days:
            snapshot = published.get(day.isoformat())
            if snapshot is None:
                values.append(tmd.get(day.replace(year=2020).isoformat(), 0.0))
            else:
                values.append(snapshot.get(station, 0.0))
        out[station] = tuple(values)
    return days, out


@functools.cache
def sandy_creek() -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
    """(level, dissolved oxygen) of Sandy Creek as (seconds since the first reading, value), sorted."""
    level: list[tuple[float, float]] = []
    oxygen: list[tuple[float, float]] = []
    origin: datetime | None = None
    for r in _rows("sandy_creek_level_do_2017_2018.csv"):
        at = datetime.fromisoformat(r["timestamp_local"]).replace(tzinfo=timezone(timedelta(hours=10)))
        origin = origin or at
        t = (at - origin).total_seconds()
        if r["level_main_m"]:
            level.append((t, float(r["level_main_m"])))
        if r["dissolved_oxygen_mg_l"]:
            oxygen.append((t, float(r["dissolved_oxygen_mg_l"])))
    level.sort()
    oxygen.sort()
    return tuple(level), tuple(oxygen)


@functools.cache
def rangsit_range_m() -> tuple[float, float, float]:
    """(min, median, max) of the Rangsit canal's published levels, in metres."""
    cm = [float(r["water_level_cm"]) for r in _rows("rangsit_city_water_level_2021.csv")]
    return min(cm) / 100, median(cm) / 100, max(cm) / 100


class Replay:
    """A real irregular series replayed from a seeded offset, linearly interpolated, wrapping at its end."""

    def __init__(self, points: Sequence[tuple[float, float]], offset_s: float) -> None:
        self.times = [p[0] for p in points]
        self.values = [p[1] for p in points]
        self.span = self.times[-1] - self.times[0]
        self.offset = offset_s

    def at(self, seconds: float) -> float:
        t = self.times[0] + (self.offset + seconds) % self.span
        i = bisect_right(self.times, t)
        if i <= 0:
            return self.values[0]
        if i >= len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def disaggregate(total_mm: float, rng: random.Random) -> list[float]:
    """Spread a daily total over the 144 ten-minute steps of a local day as convective bursts (mostly in the
    afternoon and evening). Values are in 0.1 mm and add up exactly to the total rounded to 0.1 mm."""
    tenths = round(total_mm * 10)
    if tenths <= 0:
        return [0.0] * STEPS_PER_DAY
    weights = [0.0] * STEPS_PER_DAY
    bursts = 1 + (total_mm > 15) + (total_mm > 45)
    for _ in range(bursts):
        share = 0.3 + rng.random()
        duration = rng.randint(3, 12)
        peak = rng.randint(78, 126) if rng.random() < 0.7 else rng.randint(0, STEPS_PER_DAY - 1)
        start = max(0, min(peak - 1, STEPS_PER_DAY - duration))
        shape = [0.5] + [math.exp(-i / max(duration / 3, 1.0)) for i in range(duration - 1)]
        norm = sum(shape)
        for i, w in enumerate(shape):
            weights[start + i] += share * w / norm
    scale = sum(weights)
    out, cum_w, done = [], 0.0, 0
    for w in weights:   # cumulative rounding: exact total, no negative steps
        cum_w += w
        upto = round(tenths * cum_w / scale)
        out.append((upto - done) / 10)
        done = upto
    return out


# -- the model ---------------------------------------------------------------------------------------------------

def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * 111.2
    dlon = (a[1] - b[1]) * 111.2 * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dlat, dlon)


@dataclass(frozen=True)
class Storm:
    centre: str             # the rain gauge at the cell's centre
    step: int               # the step its rain starts at the centre
    mm: tuple[float, ...]   # mm per step at the centre


class EnvironmentModel:
    """The values of every environmental sensor at every step, deterministic for (seed, start)."""

    def __init__(self, devices: Sequence[SimDevice], seed: int, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the start time must be timezone-aware")
        self.seed = seed
        self.start = start.astimezone(UTC)
        self.devices = [d for d in devices if d.kind in KINDS]
        self.by_id = {d.id: d for d in self.devices}
        self.gauges = [d for d in self.devices if d.kind == "rain_gauge"]
        self.canals = [d for d in self.devices if d.kind == "water_level"]
        self.probes = [d for d in self.devices if d.kind == "dissolved_oxygen"]
        rng = random.Random(f"env:{seed}")
        days, library = daily_rain_library()
        self.library_days = days
        station_of = {dev_id: station for dev_id, station, _, _ in rain_stations()}
        self.daily = {g.id: library.get(station_of.get(g.id, ""), library[sorted(library)[0]]) for g in self.gauges}
        self.day_offset = rng.randrange(len(days))
        self.start_day = self.start.astimezone(LOCAL).date()
        # canals: the two nearest gauges upstream, inverse-distance weights
        self.upstream: dict[str, list[tuple[str, float]]] = {}
        for c in self.canals:
            dist = {g.id: _km((c.lat, c.lon), (g.lat, g.lon)) for g in self.gauges}
            near = sorted(self.gauges, key=lambda g: dist[g.id])[:2]
            inv = [1 / max(dist[g.id], 0.5) for g in near]
            self.upstream[c.id] = [(g.id, w / sum(inv)) for g, w in zip(near, inv, strict=True)]
        # the early storm breaks over the gauge closest to a canal (in Phuket: the town gauge upstream of Khlong
        # Bang Yai, whose overflow floods the old town), so that canal floods too, in the same sub-district
        self.storms: list[Storm] = []
        if self.gauges:
            if self.canals:
                closest = min(self.canals, key=lambda c: min(_km((c.lat, c.lon), (g.lat, g.lon)) for g in self.gauges))
                centre = self.upstream[closest.id][0][0]
            else:
                centre = rng.choice(self.gauges).id
            self.storms.append(Storm(centre, FIRST_STORM_STEP, FIRST_STORM_MM))
        self._monsoon_days: set[int] = set()
        level_pts, oxygen_pts = sandy_creek()
        lvals = sorted(v for _, v in level_pts)
        self.level_p10, self.level_p50, self.level_p90 = (lvals[len(lvals) // 10], lvals[len(lvals) // 2],
                                                          lvals[len(lvals) * 9 // 10])
        self.do_median = median(v for _, v in oxygen_pts)
        lo, mid, hi = rangsit_range_m()
        self.level_amplitude = (hi - lo) / 2
        self.replays: dict[str, Replay] = {}
        self.site_base: dict[str, float] = {}
        for c in self.canals:
            self.replays[c.id] = Replay(level_pts, rng.uniform(0, level_pts[-1][0]))
            self.site_base[c.id] = round(mid * rng.uniform(0.6, 1.0), 3)
        for p in self.probes:
            self.replays[p.id] = Replay(oxygen_pts, rng.uniform(0, oxygen_pts[-1][0]))
        beaches = [p for p in self.probes if "beach" in p.name.lower()] or list(self.probes)
        self.dip_device = rng.choice(beaches).id if beaches else None
        self.dip_step = rng.randint(12, 18)   # 2-3 hours after the start, after the storm's runoff
        self.dip_steps = 24
        self._disagg: dict[tuple[str, int], list[float]] = {}
        self._reservoirs: dict[str, list[float]] = {c.id: [0.0, 0.0] for c in self.canals}
        self._levels: dict[str, list[float]] = {c.id: [] for c in self.canals}
        self._routed_to = -WARM_UP_STEPS

    # -- time ---------------------------------------------------------------------------------------------------
    def time_of(self, step: int) -> datetime:
        return self.start + step * STEP

    def _day_and_slot(self, step: int) -> tuple[int, int]:
        local = self.time_of(step).astimezone(LOCAL)
        return (local.date() - self.start_day).days, (local.hour * 60 + local.minute) // 10

    def library_day(self, day: int) -> int:
        """Which day of the real series simulated day ``day`` (0 = the start's local day) replays."""
        return (self.day_offset + day) % len(self.library_days)

    # -- rain ---------------------------------------------------------------------------------------------------
    def base_rain(self, gauge: str, step: int) -> float:
        day, slot = self._day_and_slot(step)
        lib = self.library_day(day)
        key = (gauge, lib)
        steps = self._disagg.get(key)
        if steps is None:
            rng = random.Random(f"rain:{self.seed}:{gauge}:{lib}")
            steps = self._disagg[key] = disaggregate(self.daily[gauge][lib], rng)
        return steps[slot]

    def _monsoon_storms(self, day: int) -> None:
        """Seeded monsoon cells of simulated day ``day`` (May-October of the replayed season: most days)."""
        if day in self._monsoon_days or day < 1 or not self.gauges:
            return
        self._monsoon_days.add(day)
        rng = random.Random(f"storm:{self.seed}:{day}")
        month = self.library_days[self.library_day(day)].month
        if 5 <= month <= 10 and rng.random() < 0.6:
            total = rng.uniform(25, 70)
            duration = rng.randint(6, 12)
            shape = [math.exp(-abs(i - 2) / 2.5) for i in range(duration)]
            mm = tuple(round(total * w / sum(shape), 1) for w in shape)
            day_start = (datetime.combine(self.start_day + timedelta(days=day), datetime.min.time(), LOCAL)
                         - self.start) // STEP
            self.storms.append(Storm(rng.choice(self.gauges).id, day_start + rng.randint(84, 120), mm))

    def storm_rain(self, gauge: str, step: int) -> float:
        day, _ = self._day_and_slot(step)
        for d in (day - 1, day):
            self._monsoon_storms(d)
        dev = self.by_id[gauge]
        total = 0.0
        for storm in self.storms:
            c = self.by_id[storm.centre]
            km = _km((c.lat, c.lon), (dev.lat, dev.lon))
            i = step - storm.step - round(km / STORM_SPEED_KM_PER_STEP)
            if 0 <= i < len(storm.mm):
                total += storm.mm[i] * math.exp(-km / STORM_DECAY_KM)
        return total

    def rain(self, gauge: str, step: int) -> float:
        storm = self.storm_rain(gauge, step) if step >= 0 else 0.0
        return round(self.base_rain(gauge, step) + storm, 1)

    # -- water level --------------------------------------------------------------------------------------------
    def _route_to(self, step: int) -> None:
        while self._routed_to <= step:
            k = self._routed_to
            for canal, gauges in self.upstream.items():
                rain = sum(w * self.rain(g, k) for g, w in gauges)
                s = self._reservoirs[canal]
                s[0] += rain
                q1 = s[0] / RESERVOIR_K_STEPS
                s[0] -= q1
                s[1] += q1
                q2 = s[1] / RESERVOIR_K_STEPS
                s[1] -= q2
                if k >= 0:
                    self._levels[canal].append(q2)
            self._routed_to += 1

    def level(self, canal: str, step: int) -> float:
        self._route_to(step)
        raw = self.replays[canal].at(step * STEP_S)
        spread = max(self.level_p90 - self.level_p10, 1e-6)
        norm = max(-1.0, min(2.0, (raw - self.level_p50) / spread))
        base = self.site_base[canal] + self.level_amplitude * norm
        return round(max(0.0, base + LEVEL_GAIN_M * self._levels[canal][step]), 3)

    # -- dissolved oxygen ---------------------------------------------------------------------------------------
    def oxygen(self, probe: str, step: int) -> float:
        raw = self.replays[probe].at(step * STEP_S)
        value = max(4.3, min(9.5, 6.8 + 0.45 * (raw - self.do_median)))   # coastal water, scaled
        if probe == self.dip_device and self.dip_step <= step < self.dip_step + self.dip_steps:
            bump = math.sin(math.pi * (step - self.dip_step + 0.5) / self.dip_steps) ** 2
            value -= (value - 3.2) * bump
        return round(value, 2)

    # -- all of it ----------------------------------------------------------------------------------------------
    def value(self, device_id: str, step: int) -> float:
        if step < 0:
            raise ValueError("steps start at 0")
        kind = self.by_id[device_id].kind
        if kind == "rain_gauge":
            return self.rain(device_id, step)
        if kind == "water_level":
            return self.level(device_id, step)
        return self.oxygen(device_id, step)

    def series(self, device_id: str, steps: int) -> list[float]:
        return [self.value(device_id, k) for k in range(steps)]


def datastream_body(device: SimDevice, sensor_id: int | None, property_id: int | None) -> dict[str, Any]:
    kind = KINDS[device.kind]
    return {
        "name": f"{kind.quantity} at {device.name}",
        "description": kind.description,
        "observationType": MEASUREMENT,
        "unitOfMeasurement": kind.unit,
        "properties": {"device_id": device.id, "interval": "PT10M"},
        "Sensor": {"@iot.id": sensor_id} if sensor_id is not None else dict(kind.sensor),
        "ObservedProperty": {"@iot.id": property_id} if property_id is not None else dict(kind.observed_property),
    }


def thing_body(device: SimDevice, sensor_id: int | None, property_id: int | None) -> dict[str, Any]:
    return {
        "name": device.name,
        "description": f"{KINDS[device.kind].quantity} sensor of the Phuket environmental network",
        "properties": {"device_id": device.id, "kind": device.kind, "agency": "pkt-pao", "channel": device.channel,
                       **device.properties},
        "Locations": [{"name": device.name, "description": f"Where {device.id} is installed",
                       "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [device.lon, device.lat]}}],
        "Datastreams": [datastream_body(device, sensor_id, property_id)],
    }


# -- the transport: SensorThings over HTTP and MQTT, like real devices ----------------------------------------------

class EnvironmentFeed:
    """Registers each environmental sensor as a SensorThings Thing with one Datastream (idempotently), then
    reports the model's values: MQTT devices publish to ``v1.1/Datastreams(<id>)/Observations`` (QoS 1), HTTP
    devices POST each value, and every other HTTP device is a data logger that uploads a data array
    (``CreateObservations``) every ``batch_steps`` steps."""

    def __init__(self, model: EnvironmentModel, *, silent: str | None = None, silent_after_step: int = 0,
                 batch_steps: int = 3) -> None:
        self.model = model
        self.silent, self.silent_after_step = silent, silent_after_step
        self.batch_steps = batch_steps
        self.streams: dict[str, int] = {}     # device id -> Datastream id
        http_devices = [d for d in model.devices if d.channel == "http"]
        self.loggers = {d.id for i, d in enumerate(http_devices) if i % 2 == 1}
        self.pending: dict[str, list[list[Any]]] = {}
        self.created = 0

    async def setup(self, http: Any) -> None:
        """Find or create the Thing, Location, Datastream, Sensor and ObservedProperty of every device."""
        shared: dict[str, tuple[int | None, int | None]] = {}
        for device in self.model.devices:
            kind = KINDS[device.kind]
            found = await _get(http, "/v1.1/Things", {"$filter": f"properties/device_id eq '{device.id}'",
                                                      "$expand": "Datastreams"})
            things = found.get("value", [])
            if things and things[0].get("Datastreams"):
                self.streams[device.id] = int(things[0]["Datastreams"][0]["@iot.id"])
                continue
            if device.kind not in shared:
                sensor = await _get(http, "/v1.1/Sensors", {"$filter": f"name eq '{kind.sensor['name']}'"})
                prop = await _get(http, "/v1.1/ObservedProperties",
                                  {"$filter": f"name eq '{kind.observed_property['name']}'"})
                shared[device.kind] = (_first_id(sensor), _first_id(prop))
            sensor_id, prop_id = shared[device.kind]
            if things:   # a Thing without its Datastream (created by hand?): add the Datastream to it
                thing_id = int(things[0]["@iot.id"])
                response = await http.post(f"/v1.1/Things({thing_id})/Datastreams",
                                           json=datastream_body(device, sensor_id, prop_id))
            else:
                response = await http.post("/v1.1/Things", json=thing_body(device, sensor_id, prop_id))
            _check(response, f"creating the Thing of {device.id}")
            thing_id = int(things[0]["@iot.id"]) if things else int(response.json()["@iot.id"])
            streams = await _get(http, f"/v1.1/Things({thing_id})/Datastreams",
                                 {"$expand": "Sensor,ObservedProperty"})
            stream = streams["value"][0]
            self.streams[device.id] = int(stream["@iot.id"])
            shared[device.kind] = (int(stream["Sensor"]["@iot.id"]), int(stream["ObservedProperty"]["@iot.id"]))
            self.created += 1

    def reporting(self, step: int) -> list[SimDevice]:
        """The devices that report at ``step`` (the silent one stops like its heartbeats)."""
        return [d for d in self.model.devices if d.id in self.streams
                and not (d.id == self.silent and step >= self.silent_after_step)]

    async def send(self, http: Any, queue: Any, step: int, stats: Any) -> None:
        """Report every device's value of ``step``; loggers upload their data array every ``batch_steps``."""
        when = self.model.time_of(step).isoformat().replace("+00:00", "Z")
        for device in self.reporting(step):
            value = self.model.value(device.id, step)
            stream = self.streams[device.id]
            if device.channel == "mqtt":
                await queue.put((f"v1.1/Datastreams({stream})/Observations",
                                 _dumps({"phenomenonTime": when, "result": value})))
            elif device.id in self.loggers:
                self.pending.setdefault(device.id, []).append([when, value])
            else:
                response = await http.post(f"/v1.1/Datastreams({stream})/Observations",
                                           json={"phenomenonTime": when, "result": value})
                if response.status_code == 201:
                    stats.observations_http += 1
                else:
                    stats.errors += 1
        if (step + 1) % self.batch_steps == 0:
            await self.flush(http, stats)

    async def flush(self, http: Any, stats: Any) -> None:
        """Upload the loggers' buffered values as one ``CreateObservations`` request."""
        blocks = [{"Datastream": {"@iot.id": self.streams[dev]}, "components": ["phenomenonTime", "result"],
                   "dataArray": rows} for dev, rows in sorted(self.pending.items()) if rows]
        self.pending.clear()
        if not blocks:
            return
        response = await http.post("/v1.1/CreateObservations", json=blocks)
        if response.status_code != 201:
            stats.errors += 1
            return
        links = response.json()
        stats.observations_http += sum(1 for link in links if link != "error")
        stats.errors += sum(1 for link in links if link == "error")


async def _get(http: Any, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = await http.get(path, params=params)
    _check(response, f"GET {path}")
    body: dict[str, Any] = response.json()
    return body


def _check(response: Any, what: str) -> None:
    if response.status_code >= 300:
        raise CityDataError(f"{what} failed: HTTP {response.status_code} {response.text[:200]}",
                            code="simulator_setup_failed", status=502)


def _first_id(body: dict[str, Any]) -> int | None:
    values = body.get("value") or []
    return int(values[0]["@iot.id"]) if values else None


def _dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
