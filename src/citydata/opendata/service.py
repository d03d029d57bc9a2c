"""``OpenDataService``: the published rows of each catalogue dataset (computed from its source, anonymised,
cached for ``opendata_cache_s``), and the downloads (CSV, GeoJSON, Parquet)."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from citydata.errors import NotFound
from citydata.opendata.anonymise import anonymise
from citydata.opendata.catalogue import Catalogue, OpenDataset, load_catalogue

if TYPE_CHECKING:
    from citydata.analytics import AnalyticsService
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.geo import Geography
    from citydata.opendata.keys import KeyService

MEDIA = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json", "parquet":
         "application/vnd.apache.parquet"}


@dataclass
class Published:
    dataset: OpenDataset
    records: list[dict[str, Any]]
    geometries: list[dict[str, Any] | None]
    suppressed: int
    computed_at: Any
    note: str = ""


class OpenDataService:
    def __init__(self, analytics: AnalyticsService, geography: Geography, settings: Settings, clock: Clock,
                 keys: KeyService, catalogue: Catalogue | None = None) -> None:
        self.analytics, self.geography, self.settings, self.clock = analytics, geography, settings, clock
        self.keys = keys
        self.catalogue = catalogue or load_catalogue()
        self.k = settings.opendata_k
        self._cache: dict[str, tuple[float, Published]] = {}

    async def published(self, name: str) -> Published:
        ds = self.catalogue.get(name)
        hit = self._cache.get(ds.name)
        if hit is not None and time.monotonic() - hit[0] < self.settings.opendata_cache_s:
            return hit[1]
        rows, geoms, note = await self._source_rows(ds)
        records, suppressed = anonymise(rows, ds, self.k)
        if ds.area_field and not any(geoms):
            geoms = [self._area_geometry(r.get(ds.area_field)) for r in records]
        pub = Published(ds, records, geoms, suppressed, self.clock.now(), note)
        self._cache[ds.name] = (time.monotonic(), pub)
        return pub

    async def stop(self) -> None:
        await self.keys.stop()

    def invalidate(self) -> None:
        self._cache.clear()

    async def _source_rows(self, ds: OpenDataset) -> tuple[list[dict[str, Any]], list[dict[str, Any] | None], str]:
        src = ds.source
        if "analytics" in src:
            result = await self.analytics.run(src["analytics"], dict(src.get("params", {})))
            return result.rows, [None] * len(result.rows), ""
        try:
            rows = await self.analytics.datasets.rows(src["dataset"])
        except NotFound:
            return [], [], f"dataset {src['dataset']} has not been imported"
        if "group_by" in src:
            return self._grouped(src, rows), [], ""
        out, geoms = [], []
        for r in rows:
            out.append({k: self._pick(r, path) for k, path in src["map"].items()})
            geoms.append(r["geometry"] if src.get("geometry") else None)
        return out, geoms, ""

    def _pick(self, row: dict[str, Any], path: str) -> Any:
        head, _, key = path.partition(".")
        if head == "data":
            return row["data"].get(key)
        if head == "place":
            place = self.geography.get(row["place_id"]) if row.get("place_id") else None
            return getattr(place, key, None) if place else None
        raise KeyError(path)

    def _grouped(self, src: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            key_values = {k: self._pick(r, path) for k, path in src["group_by"].items()}
            key = tuple(key_values.values())
            g = groups.setdefault(key, {**key_values, **({src["count"]: 0} if "count" in src else {}),
                                        **{k: 0 for k in src.get("sum", {})}})
            if "count" in src:
                g[src["count"]] += 1
            for k, path in src.get("sum", {}).items():
                g[k] += self._pick(r, path) or 0
        return [groups[k] for k in sorted(groups, key=lambda t: tuple(str(x) for x in t))]

    def _area_geometry(self, code: Any) -> dict[str, Any] | None:
        from citydata.geo.model import geometry_to_geojson

        place = self.geography.get(f"subdistrict:{code}") if code else None
        return geometry_to_geojson(place.geometry) if place else None

    # -- downloads ------------------------------------------------------------------------------------------
    async def download(self, name: str, fmt: str) -> bytes:
        pub = await self.published(name)
        if fmt == "csv":
            return to_csv(pub)
        if fmt == "geojson":
            return to_geojson(pub)
        if fmt == "parquet":
            return to_parquet(pub)
        raise NotFound(f"no {fmt!r} download (csv, geojson, parquet)", code="format_not_found")


def to_csv(pub: Published) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    ids = [f.id for f in pub.dataset.fields]
    writer.writerow(ids)
    for rec in pub.records:
        writer.writerow(["" if rec.get(i) is None else rec.get(i) for i in ids])
    return buf.getvalue().encode("utf-8")


def to_geojson(pub: Published) -> bytes:
    features = [{"type": "Feature", "geometry": geom, "properties": rec}
                for rec, geom in zip(pub.records, pub.geometries or [None] * len(pub.records), strict=False)]
    return orjson.dumps({"type": "FeatureCollection", "name": pub.dataset.name, "features": features})


def to_parquet(pub: Published) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"text": pa.string(), "int": pa.int64(), "numeric": pa.float64(), "date": pa.string(),
             "timestamp": pa.string()}
    schema = pa.schema([pa.field(f.id, types[f.type]) for f in pub.dataset.fields],
                       metadata={"dataset": pub.dataset.name, "licence": str(pub.dataset.gd.get("license_id"))})
    columns = {f.id: [r.get(f.id) for r in pub.records] for f in pub.dataset.fields}
    table = pa.table(columns, schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
