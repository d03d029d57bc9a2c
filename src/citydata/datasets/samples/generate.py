"""Rebuild the sample Phuket government datasets (SYNTHETIC values, deterministic seed).

    python -m citydata.datasets.samples.generate

Shapes follow the real publications (Ministry of Tourism and Sports arrival statistics, Treasury Department
appraised land prices per zone, Royal Thai Police case statistics, the Department of Provincial Administration
hotel register); the numbers are invented at plausible magnitudes. Geography comes from the shipped reference
city (sub-district polygons and names)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import orjson
import shapely

from citydata.geo import Place, read_reference_city
from citydata.geo.model import geometry_to_geojson

HERE = Path(__file__).parent
NATIONALITIES = (("Russia", "รัสเซีย", 160_000), ("China", "จีน", 120_000), ("India", "อินเดีย", 70_000),
                 ("Australia", "ออสเตรเลีย", 45_000), ("United Kingdom", "สหราชอาณาจักร", 40_000),
                 ("Germany", "เยอรมนี", 35_000), ("Kazakhstan", "คาซัคสถาน", 30_000),
                 ("South Korea", "เกาหลีใต้", 25_000), ("Malaysia", "มาเลเซีย", 22_000),
                 ("Singapore", "สิงคโปร์", 20_000), ("United States", "สหรัฐอเมริกา", 18_000),
                 ("France", "ฝรั่งเศส", 15_000), ("Thailand (domestic)", "ไทย", 280_000))
# high season Nov-Apr, low season May-Oct
SEASON = (1.25, 1.3, 1.2, 1.05, 0.75, 0.7, 0.8, 0.85, 0.7, 0.8, 1.05, 1.3)
CHECKPOINTS = (("HKT", 0.86), ("THA_CHATCHAI", 0.1), ("RASSADA", 0.04))
PRICE_BASE = {"830202": 450_000, "830108": 300_000, "830107": 180_000, "830101": 350_000, "830102": 300_000,
              "830203": 220_000, "830303": 250_000, "830106": 120_000, "830105": 110_000, "830104": 90_000,
              "830201": 80_000, "830103": 60_000, "830302": 50_000, "830301": 40_000, "830304": 35_000,
              "830305": 70_000, "830306": 45_000}
CRIMES = (("theft", "ลักทรัพย์", 6), ("assault", "ทำร้ายร่างกาย", 2), ("fraud", "ฉ้อโกง", 3),
          ("drugs", "ยาเสพติด", 4), ("traffic", "จราจร", 8))
CRIME_WEIGHT = {"830202": 4.0, "830101": 2.0, "830102": 1.8, "830108": 1.8, "830107": 1.4, "830105": 1.5,
                "830104": 1.3, "830106": 1.2}


def tourist_arrivals(rng: random.Random) -> None:
    with (HERE / "phuket_tourist_arrivals_2024.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["month", "province_code", "nationality", "nationality_th", "checkpoint", "arrivals"])
        for m in range(12):
            for name, name_th, base in NATIONALITIES:
                for cp, share in CHECKPOINTS:
                    value = int(base * SEASON[m] * share * rng.uniform(0.85, 1.15))
                    w.writerow([f"2024-{m + 1:02d}", "83", name, name_th, cp, value])


def land_price_zones(rng: random.Random, subdistricts: list[Place]) -> None:
    features = []
    for p in subdistricts:
        xmin, ymin, xmax, ymax = p.geometry.bounds
        # two zones per sub-district: the half nearer the west coast (beaches) and the inland half
        xmid = (xmin + xmax) / 2
        for j, (box, factor, label) in enumerate(((shapely.box(xmin, ymin, xmid, ymax), 1.4, "west"),
                                                  (shapely.box(xmid, ymin, xmax, ymax), 0.7, "east"))):
            part = shapely.intersection(p.geometry, box)
            if part.is_empty or part.area < 1e-6:
                continue
            part = shapely.set_precision(part.simplify(0.0005), 1e-5)
            price = int(PRICE_BASE[p.code] * factor * rng.uniform(0.9, 1.1) / 1000) * 1000
            features.append({"type": "Feature", "geometry": geometry_to_geojson(part), "properties": {
                "zone_id": f"LP-{p.code}-{j + 1}", "tambon_th": f"ต.{p.name_th}", "zone_side": label,
                "price_thb_per_sq_wah": price, "valid_from": "2566-01-01", "valid_to": "2569-12-31"}})
    doc = {"type": "FeatureCollection", "name": "phuket_land_price_zones", "features": features}
    (HERE / "phuket_land_price_zones.geojson").write_bytes(orjson.dumps(doc))


def crime_statistics(rng: random.Random, subdistricts: list[Place]) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "cases_2024"
    ws.append(["year", "month", "subdistrict", "category", "category_th", "cases", "solved"])
    for m in range(1, 13):
        for p in subdistricts:
            for cat, cat_th, base in CRIMES:
                cases = max(0, int(rng.gauss(base * CRIME_WEIGHT.get(p.code, 0.6) * SEASON[m - 1], 2)))
                ws.append([2024, m, p.name_en, cat, cat_th, cases, int(cases * rng.uniform(0.5, 0.9))])
    book.save(HERE / "phuket_crime_statistics_2024.xlsx")


def hotel_register(rng: random.Random, subdistricts: list[Place]) -> None:
    weights = {"830202": 30, "830108": 15, "830107": 10, "830101": 8, "830102": 6, "830203": 8, "830303": 10,
               "830106": 6, "830105": 5, "830305": 4, "830306": 3}
    prefixes = ("Andaman", "Sea Breeze", "Sino", "Palm", "Coral", "Sunset", "Orchid", "Baan", "Blue Lagoon",
                "Old Town", "Hillside", "Lotus")
    kinds = (("Hotel", "โรงแรม"), ("Resort", "รีสอร์ท"), ("Guesthouse", "เกสต์เฮาส์"), ("Boutique Hotel", "บูติคโฮเทล"))
    with (HERE / "phuket_hotel_register.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["licence_no", "hotel_name", "hotel_name_th", "tambon", "rooms", "stars", "registered",
                    "lat", "lon"])
        n = 0
        for p in subdistricts:
            for _ in range(weights.get(p.code, 2)):
                n += 1
                kind, kind_th = rng.choice(kinds)
                pre = rng.choice(prefixes)
                pt = p.geometry.representative_point()
                for _ in range(50):
                    xmin, ymin, xmax, ymax = p.geometry.bounds
                    cand = shapely.Point(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax))
                    if p.geometry.contains(cand):
                        pt = cand
                        break
                rooms = rng.choice((12, 24, 40, 60, 90, 150, 220, 320))
                w.writerow([f"83/{2555 + n % 12}/{n:04d}", f"{pre} {p.name_en} {kind}",
                            f"{kind_th}{pre} {p.name_th}", f"ต.{p.name_th}", rooms,
                            rng.choice(("", "2", "3", "3", "4", "4", "5")),
                            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2550, 2567)}",
                            round(pt.y, 5), round(pt.x, 5)])


def main() -> None:
    rng = random.Random(20240601)
    subs = sorted((p for p in read_reference_city("phuket") if p.kind == "subdistrict"), key=lambda p: p.code)
    tourist_arrivals(rng)
    land_price_zones(rng, subs)
    crime_statistics(rng, subs)
    hotel_register(rng, subs)


if __name__ == "__main__":
    main()
