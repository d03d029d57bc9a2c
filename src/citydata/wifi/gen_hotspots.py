"""Generate the shipped hotspot registry (``data/phuket_hotspots.csv``) deterministically.

    .venv/bin/python -m citydata.wifi.gen_hotspots [--out src/citydata/wifi/data/phuket_hotspots.csv]

No public list of Phuket's free-WiFi hotspots exists (see ``shared/data/poi/README.md``), so the 1,000 hotspots are
*placed* around real points: the beaches, Bangla Road, the Old Town, the piers and every Phuket Smart Bus stop
of the reference city (``citydata/geo/data/phuket``, from ``Nonarkara/phuket-smart-bus``, MIT). Positions on
land are kept (inside a sub-district polygon); pier hotspots may stand on the jetty, just offshore, and take the
nearest sub-district within 2 km. The same code and data always give the same file.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
import sys
from pathlib import Path

from citydata.geo import read_reference_city
from citydata.geo.index import Geography

TOTAL = 1000
SEED = 83
OLD_TOWN = (98.3880, 7.8840)   # Thalang Road, the Old Town centre the simulator uses
# zone: (anchor kind, anchor code or coordinates, hotspots, spread in metres, operator, display name)
AREAS: list[tuple[str, str, int, float, str, str]] = [
    ("patong", "beach:patong", 200, 450.0, "municipal", "Patong Beach"),
    ("bangla", "nightlife:bangla", 60, 180.0, "municipal", "Bangla Road"),
    ("karon", "beach:karon", 100, 400.0, "municipal", "Karon Beach"),
    ("kata", "beach:kata", 90, 350.0, "municipal", "Kata Beach"),
    ("kamala", "beach:kamala", 60, 350.0, "municipal", "Kamala Beach"),
    ("surin", "beach:surin", 50, 300.0, "municipal", "Surin Beach"),
    ("rawai", "beach:rawai", 50, 300.0, "municipal", "Rawai Beach"),
    ("old_town", "old_town", 140, 380.0, "municipal", "Phuket Old Town"),
    ("rassada_pier", "pier:rassada", 25, 120.0, "pier", "Rassada Pier"),
    ("chalong_pier", "pier:chalong", 25, 120.0, "pier", "Chalong Pier"),
    ("bang_rong_pier", "pier:bang_rong", 15, 100.0, "pier", "Bang Rong Pier"),
    ("ao_po_pier", "checkpoint:AO_PO", 15, 100.0, "pier", "Ao Po Grand Marina"),
]
COLUMNS = ["id", "name", "lon", "lat", "zone", "subdistrict_code", "operator"]


def _offset(lon: float, lat: float, dx_m: float, dy_m: float) -> tuple[float, float]:
    return (lon + dx_m / (111_320.0 * math.cos(math.radians(lat))), lat + dy_m / 110_574.0)


def _anchor(geo: Geography, ref: str) -> tuple[float, float]:
    if ref == "old_town":
        return OLD_TOWN
    place = geo.require(ref)
    return place.lon, place.lat


def subdistrict(geo: Geography, lon: float, lat: float, offshore_m: float = 0.0) -> str | None:
    hit = geo.nearest(lon, lat, offshore_m, kind="subdistrict")
    return None if hit is None else hit[0].code


def generate(geo: Geography | None = None) -> list[dict[str, str]]:
    geo = geo or Geography.from_places(read_reference_city("phuket"))
    rng = random.Random(SEED)
    rows: list[dict[str, str]] = []

    def add(zone: str, name: str, lon: float, lat: float, sub: str, operator: str) -> None:
        n = sum(1 for r in rows if r["zone"] == zone) + 1
        rows.append({"id": f"wifi-{zone.replace('_', '-')}-{n:03d}", "name": f"{name} WiFi {n:03d}",
                     "lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "zone": zone, "subdistrict_code": sub,
                     "operator": operator})

    for zone, ref, count, spread, operator, name in AREAS:
        lon0, lat0 = _anchor(geo, ref)
        offshore = 2000.0 if operator == "pier" else 0.0
        placed = 0
        while placed < count:
            lon, lat = _offset(lon0, lat0, rng.gauss(0, spread), rng.gauss(0, spread))
            sub = subdistrict(geo, lon, lat, offshore)
            if sub is None:
                continue        # in the sea: move on
            add(zone, name, lon, lat, sub, operator)
            placed += 1
    # every distinct bus stop gets one; the rest go to the busiest stops (both kerbs of the main line first)
    stops: list[tuple[str, float, float]] = []
    for p in sorted(geo.by_kind("bus_stop"), key=lambda p: p.id):
        if all(math.hypot((p.lon - x) * 110_000, (p.lat - y) * 110_000) > 40 for _, x, y in stops):
            stops.append((p.name_en, p.lon, p.lat))
    i = 0
    while len(rows) < TOTAL:
        stop_name, lon, lat = stops[i % len(stops)]
        i += 1
        lon, lat = _offset(lon, lat, rng.uniform(-15, 15), rng.uniform(-15, 15))
        sub = subdistrict(geo, lon, lat, 2000.0) or ""
        add("bus_stops", f"Smart Bus {stop_name}", lon, lat, sub, "smart_bus")
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "phuket_hotspots.csv")
    args = parser.parse_args()
    rows = generate()
    args.out.write_text(to_csv(rows), encoding="utf-8")
    zones: dict[str, int] = {}
    for r in rows:
        zones[r["zone"]] = zones.get(r["zone"], 0) + 1
    sys.stdout.write(f"{len(rows)} hotspots -> {args.out}: " + ", ".join(f"{z} {n}" for z, n in zones.items()) + "\n")


if __name__ == "__main__":
    main()
