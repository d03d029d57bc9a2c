"""The device feed: Phuket's environmental sensors are registered, then send heartbeats (mostly MQTT)."""

from __future__ import annotations

import csv
import random
import zlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class SimDevice:
    id: str
    kind: str
    name: str
    lat: float
    lon: float
    channel: str            # "mqtt" or "http": how this device reports
    properties: dict[str, Any] = field(default_factory=dict)

    def registration(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "lat": self.lat, "lon": self.lon,
                "agency": "pkt-pao", "properties": self.properties}


# Canal water-level sites (approximate points on the named canals) and DO probes at piers and beaches
# (the coordinates of the places in the reference city).
CANAL_SITES = (
    ("wl-bangyai", "Khlong Bang Yai, Phuket Town", 7.8890, 98.3905),
    ("wl-patong", "Khlong Pak Bang, Patong", 7.8985, 98.3005),
    ("wl-thachin", "Khlong Tha Chin, Thalang", 8.0160, 98.3410),
    ("wl-kathu", "Khlong Kathu, Kathu", 7.9110, 98.3420),
)
DO_SITES = (
    ("do-patong", "Patong beach", 7.88752, 98.29133),
    ("do-karon", "Karon beach", 7.84776, 98.29331),
    ("do-kata", "Kata beach", 7.81874, 98.30010),
    ("do-rawai", "Rawai beach", 7.77209, 98.32179),
    ("do-chalong", "Chalong Pier", 7.8281, 98.3613),
    ("do-rassada", "Rassada Pier", 7.8557, 98.4013),
)


def rain_stations() -> list[tuple[str, str, float, float]]:
    text = resources.files("citydata.sim").joinpath("data/thaiwater_phuket_rain_stations.csv").read_text(
        encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return [(f"rain-{i + 1:02d}", r["station"], float(r["lat"]), float(r["lon"])) for i, r in enumerate(rows)]


def phuket_devices(rng: random.Random) -> list[SimDevice]:
    """The simulated sensor fleet. About one device in four reports over HTTP, the rest over MQTT."""
    out: list[SimDevice] = []
    for dev_id, station, lat, lon in rain_stations():
        out.append(SimDevice(dev_id, "rain_gauge", f"Rain gauge {station}", lat, lon,
                             "http" if rng.random() < 0.25 else "mqtt", {"source": "ThaiWater station"}))
    for dev_id, name, lat, lon in CANAL_SITES:
        out.append(SimDevice(dev_id, "water_level", f"Water level {name}", lat, lon,
                             "http" if rng.random() < 0.25 else "mqtt"))
    for dev_id, name, lat, lon in DO_SITES:
        out.append(SimDevice(dev_id, "dissolved_oxygen", f"Dissolved oxygen {name}", lat, lon,
                             "http" if rng.random() < 0.25 else "mqtt"))
    return out


def heartbeat(rng: random.Random, device: SimDevice, tick: int) -> dict[str, Any]:
    """A plausible heartbeat: battery draining slowly, signal wandering."""
    base = 100 - (zlib.crc32(device.id.encode()) % 20)
    return {"battery": max(5.0, round(base - tick * 0.01, 2)), "rssi": round(-60 - rng.random() * 40, 1),
            "status": "ok"}
