"""Sample Phuket government datasets. SYNTHETIC: realistic shapes and magnitudes, invented values (see
README.md here; ``python -m citydata.datasets.samples.generate`` rebuilds them). ``SAMPLES`` says how each is
imported; ``citydata import dataset --samples`` and the demo load them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citydata.datasets.geojoin import GeoJoin
from citydata.datasets.service import ImportOptions

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Sample:
    name: str
    file: str
    join: GeoJoin
    types: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return HERE / self.file

    def options(self, created_by: str = "samples") -> ImportOptions:
        return ImportOptions(types=dict(self.types), required=self.required, join=self.join,
                             created_by=created_by)


SAMPLES: tuple[Sample, ...] = (
    Sample("tourist_arrivals", "phuket_tourist_arrivals_2024.csv", GeoJoin("code", ("province_code",), "province"),
           {"month": "date", "province_code": "text", "arrivals": "integer"}, ("month", "nationality", "arrivals")),
    Sample("land_price_zones", "phuket_land_price_zones.geojson", GeoJoin("name", ("tambon_th",), "subdistrict"),
           {"price_thb_per_sq_wah": "integer", "valid_from": "date", "valid_to": "date"},
           ("zone_id", "price_thb_per_sq_wah")),
    Sample("crime_statistics", "phuket_crime_statistics_2024.xlsx", GeoJoin("name", ("subdistrict",), "subdistrict"),
           {"year": "integer", "month": "integer", "cases": "integer", "solved": "integer"},
           ("year", "month", "category", "cases")),
    Sample("hotel_register", "phuket_hotel_register.csv", GeoJoin("name", ("tambon",), "subdistrict"),
           {"rooms": "integer", "stars": "integer", "registered": "date", "lat": "number", "lon": "number"},
           ("licence_no", "hotel_name", "rooms")),
)


async def load_samples(platform: Any) -> list[str]:
    """Import every sample not imported yet (the demo calls this on start); returns the names imported."""
    from citydata.datasets.service import DatasetService

    assert platform.geography is not None
    svc = DatasetService(platform.store, platform.geography, platform.clock)
    done = []
    for sample in SAMPLES:
        if not await svc.exists(sample.name):
            report = await svc.import_file(sample.path, sample.name, sample.options("demo"))
            if report.committed:
                done.append(sample.name)
    return done
