"""Anonymisation: every open dataset's every output (datastore records, CSV, GeoJSON, Parquet) is scanned for
personal fields, personal-looking values and cells under k; the catalogue refuses personal fields and
unapproved safety data."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from citydata.errors import ConfigError
from citydata.opendata.anonymise import anonymise, scan
from citydata.opendata.catalogue import load_catalogue
from tests.analytics.seed import END, START, seed

A = "/api/3/action"


async def test_every_open_dataset_output_is_clean(aplatform: Any, aclient: Any) -> None:
    await seed(aplatform, aclient, small=True)      # Karon's WiFi counts are 1..9: must never be published
    svc = aplatform.opendata
    window = {"start": START.isoformat(), "end": END.isoformat()}
    for ds in svc.catalogue.datasets:                # analytics-backed datasets over the seeded window
        if "analytics" in ds.source:
            ds.source["params"] = window
    svc.invalidate()
    k = svc.k
    names = (await aclient.get(f"{A}/package_list")).json()["result"]
    assert len(names) == len(svc.catalogue.datasets) == 8
    suppressed_somewhere = 0
    for name in names:
        ds = svc.catalogue.get(name)
        pub = await svc.published(name)
        assert pub.records, f"{name} published nothing"
        suppressed_somewhere += pub.suppressed
        body = (await aclient.post(f"{A}/datastore_search", json={"resource_id": ds.resource_id("csv"),
                                                                  "limit": 32000})).json()["result"]
        assert body["total"] == len(pub.records)
        outputs = {"datastore": body["records"]}
        text = (await aclient.get(f"/api/v1/opendata/datasets/{name}.csv")).text
        outputs["csv"] = [{key: (_number(v) if v != "" else None) for key, v in row.items()}
                          for row in csv.DictReader(io.StringIO(text))]
        fc = orjson.loads((await aclient.get(f"/api/v1/opendata/datasets/{name}.geojson")).content)
        outputs["geojson"] = [f["properties"] for f in fc["features"]]
        raw = (await aclient.get(f"/api/v1/opendata/datasets/{name}.parquet")).content
        outputs["parquet"] = pq.read_table(io.BytesIO(raw)).to_pylist()
        for kind, records in outputs.items():
            assert len(records) == len(pub.records), (name, kind)
            problems = scan(records, ds, k)
            assert not problems, (name, kind, problems[:5])
    assert suppressed_somewhere > 0          # the small Karon cells (and small crime counts) were suppressed
    tourism = await svc.published("phuket-tourism-density-hourly")
    assert all(r["wifi_devices"] is None for r in tourism.records if r["subdistrict"] == "830108")
    assert any(r["wifi_devices"] for r in tourism.records if r["subdistrict"] == "830202")


def _number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def test_scanner_finds_what_it_must() -> None:
    ds = load_catalogue().get("phuket-tourist-arrivals")
    bad = [{"month": "2024-01-01", "nationality": "aa:bb:cc:dd:ee:ff", "nationality_th": "x", "checkpoint": "HKT",
            "arrivals": 3},
           {"month": "2024-01-01", "nationality": "someone@example.com", "nationality_th": "0812345678",
            "checkpoint": "AB1234567", "arrivals": 50, "passport": "x"}]
    problems = " | ".join(scan(bad, ds, 10))
    for needle in ("mac", "email", "phone", "passport", "under k", "personal field passport",
                   "undeclared field passport"):
        assert needle in problems, needle
    published, suppressed = anonymise(bad, ds, 10)
    assert suppressed == 1 and published[0]["arrivals"] is None and "passport" not in published[1]


def test_catalogue_refuses_personal_fields_and_unapproved_safety() -> None:
    text = (load_catalogue.__globals__["resources"].files("citydata.opendata")
            .joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    load_catalogue(text)
    with pytest.raises(ConfigError, match="personal"):
        load_catalogue(text.replace("- {id: checkpoint, type: text", "- {id: passport, type: text"))
    with pytest.raises(ConfigError, match="no approval"):
        load_catalogue(text.replace('    approved: {by: Phuket Provincial Police data owner, date: "2026-11-01"}\n',
                                    ""))
