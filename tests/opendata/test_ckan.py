"""The CKAN-compatible action API in process: envelopes, every action, datastore_search (filters, q, limit,
offset, sort, fields, CKAN-style errors), downloads, DCAT, keys with rate limits and usage counts."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pyarrow.parquet as pq

from tests.analytics.seed import seed
from tests.conftest import bearer, token_for

A = "/api/3/action"


async def _ok(client: Any, action: str, **params: Any) -> Any:
    r = await client.get(f"{A}/{action}", params=params)
    body = r.json()
    assert r.status_code == 200 and body["success"] is True, (action, r.status_code, r.text[:300])
    assert body["help"].endswith(f"help_show?name={action}")
    return body["result"]


async def test_actions(aplatform: Any, aclient: Any) -> None:
    await seed(aplatform, aclient)
    names = await _ok(aclient, "package_list")
    assert "phuket-crime-statistics" in names and names == sorted(names)
    assert await _ok(aclient, "package_list", limit=2, offset=1) == names[1:3]
    pkg = await _ok(aclient, "package_show", id="phuket-crime-statistics")
    assert pkg["title_translated"]["en"] == "Phuket crime statistics by sub-district"
    for gd in ("data_category", "data_classification", "accessible_condition", "update_frequency_unit",
               "objective", "geo_coverage", "license_id", "data_type"):
        assert pkg[gd], gd
    assert [r["format"] for r in pkg["resources"]] == ["CSV", "GeoJSON", "Parquet"]
    assert pkg["anonymisation"]["k"] == 10 and pkg["anonymisation"]["approved"]["by"]
    assert (await _ok(aclient, "package_show", id=pkg["id"]))["name"] == pkg["name"]   # by id too
    found = await _ok(aclient, "package_search", q="flood")
    assert [p["name"] for p in found["results"]] == ["phuket-flood-risk-hours"] and found["count"] == 1
    found = await _ok(aclient, "package_search", fq="organization:phuket-provincial-office", rows=2)
    assert found["count"] == 4 and len(found["results"]) == 2
    assert (await _ok(aclient, "package_search", q="ที่ดิน"))["count"] == 2             # Thai text search
    assert (await _ok(aclient, "package_search", q="tags:safety"))["count"] == 2      # Solr-style clause in q
    faceted = await _ok(aclient, "package_search", **{"facet.field": '["organization", "tags"]', "rows": 0})
    assert faceted["facets"]["organization"] == {"phuket-pao": 4, "phuket-provincial-office": 4}
    assert faceted["search_facets"]["tags"]["items"][0]["count"] >= 2 and faceted["results"] == []
    r = await aclient.get(f"{A}/package_search", params={"facet.field": '["author"]'})
    assert r.status_code == 409 and r.json()["error"]["__type"] == "Search Query Error"
    assert await _ok(aclient, "organization_list") == ["phuket-pao", "phuket-provincial-office"]
    orgs = await _ok(aclient, "organization_list", all_fields="true")
    assert orgs[0]["package_count"] == 4
    res = await _ok(aclient, "resource_show", id=pkg["resources"][2]["id"])
    assert res["format"] == "Parquet" and res["url"].endswith("/api/v1/opendata/datasets/"
                                                               "phuket-crime-statistics.parquet")
    assert (await _ok(aclient, "status_show"))["ckan_version"]

    r = await aclient.get(f"{A}/package_show", params={"id": "nope"})
    assert r.status_code == 404 and r.json()["success"] is False
    assert r.json()["error"]["__type"] == "Not Found Error"
    r = await aclient.get(f"{A}/package_create")
    assert r.status_code == 400 and "Action name not known" in r.json()["error"]["message"]
    r = await aclient.post(f"{A}/package_show", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["success"] is False


async def test_datastore_search(aplatform: Any, aclient: Any) -> None:
    await seed(aplatform, aclient)
    pkg = await _ok(aclient, "package_show", id="phuket-crime-statistics")
    rid = pkg["resources"][0]["id"]
    first = await _ok(aclient, "datastore_search", resource_id=rid, limit=5)
    assert first["total"] == 1020 and len(first["records"]) == 5 and first["records"][0]["_id"] == 1
    assert {f["id"] for f in first["fields"]} >= {"_id", "cases", "subdistrict"}
    page = await _ok(aclient, "datastore_search", resource_id=rid, limit=5, offset=5)
    assert [r["_id"] for r in page["records"]] == [6, 7, 8, 9, 10]
    theft = await _ok(aclient, "datastore_search", resource_id=rid, filters='{"category": "theft", "month": 3}',
                      sort="cases desc, subdistrict", limit=100)
    assert theft["total"] == 17 and {r["category"] for r in theft["records"]} == {"theft"}
    cases = [r["cases"] for r in theft["records"] if r["cases"] is not None]
    assert cases == sorted(cases, reverse=True)
    assert all(r["cases"] is None or r["cases"] >= 10 for r in theft["records"])      # k-suppressed cells
    # POST with a JSON body (what ckanapi sends), filters as an object, q on one field, a field list
    r = await aclient.post(f"{A}/datastore_search", json={"resource_id": rid, "q": {"name_en": "pa tong"},
                                                          "fields": ["subdistrict", "cases"], "limit": 3})
    body = r.json()["result"]
    assert {tuple(x) for x in body["records"]} == {("subdistrict", "cases")}
    assert {x["subdistrict"] for x in body["records"]} == {"830202"}
    full_text = await _ok(aclient, "datastore_search", resource_id=rid, q="Kamala fraud")
    assert full_text["total"] == 12
    for params, field in (({"filters": '{"victim": "x"}'}, "filters"), ({"sort": "victim desc"}, "sort"),
                          ({"fields": "cases,victim"}, "fields"), ({"q": '{"victim": "a"}'}, "q")):
        r = await aclient.get(f"{A}/datastore_search", params={"resource_id": rid, **params})
        assert r.status_code == 409, params
        error = r.json()
        assert error["success"] is False and error["error"]["__type"] == "Validation Error"
        assert error["error"][field] == ['field "victim" not in table']
    r = await aclient.get(f"{A}/datastore_search", params={"resource_id": rid, "limit": "-1"})
    assert r.status_code == 409 and "limit" in r.json()["error"]
    r = await aclient.get(f"{A}/datastore_search", params={"resource_id": "missing"})
    assert r.status_code == 404


async def test_downloads_and_dcat(aplatform: Any, aclient: Any) -> None:
    await seed(aplatform, aclient)
    r = await aclient.get("/api/v1/opendata/datasets/phuket-land-price-zones.csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv") and len(rows) == 34
    r = await aclient.get("/api/v1/opendata/datasets/phuket-land-price-zones.geojson")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["features"][0]["geometry"]["type"] in ("Polygon",
                                                                                           "MultiPolygon")
    r = await aclient.get("/api/v1/opendata/datasets/phuket-hotel-capacity.geojson")
    assert all(f["geometry"] for f in r.json()["features"])                  # the sub-district polygons
    r = await aclient.get("/api/v1/opendata/datasets/phuket-tourist-arrivals.parquet")
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == 468 and table.schema.field("arrivals").type == "int64"
    r = await aclient.get("/api/v1/opendata/datasets/phuket-tourist-arrivals.xls")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await aclient.get("/api/v1/opendata/catalog.jsonld")
    doc = orjson.loads(r.content)
    assert r.headers["content-type"] == "application/ld+json" and doc["@type"] == "dcat:Catalog"
    assert len(doc["dcat:dataset"]) == 8
    ds = doc["dcat:dataset"][0]
    assert {t["@language"] for t in ds["dct:title"]} == {"th", "en"}
    assert [d["dct:format"] for d in ds["dcat:distribution"]] == ["CSV", "GeoJSON", "Parquet"]


async def test_keys_rate_limits_and_usage(aplatform: Any, aclient: Any) -> None:
    admin = bearer(await token_for(aplatform, "admin"))
    r = await aclient.post("/api/v1/opendata/keys", json={"name": "Surf app", "rate_per_min": 3}, headers=admin)
    assert r.status_code == 201
    key, key_id = r.json()["key"], r.json()["id"]
    r = await aclient.post("/api/v1/opendata/keys", json={"name": "x"},
                           headers=bearer(await token_for(aplatform, "hotel")))
    assert r.status_code == 403
    for i in range(3):
        r = await aclient.get(f"{A}/package_list", headers={"X-CKAN-API-Key": key})
        assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "3", i
    r = await aclient.get(f"{A}/package_list", headers={"Authorization": key})          # ckanapi's header
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["success"] is False and r.json()["error"]["__type"] == "Rate Limit Error"
    r = await aclient.get("/api/v1/opendata/datasets/phuket-tourist-arrivals.csv",
                          headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and r.headers["Retry-After"]
    usage = (await aclient.get(f"/api/v1/opendata/keys/{key_id}/usage", headers=admin)).json()["days"]
    assert usage[0]["requests"] == 5 and usage[0]["limited"] == 2
    listed = (await aclient.get("/api/v1/opendata/keys", headers=admin)).json()["items"]
    assert [(k["id"], k["requests"]) for k in listed] == [(key_id, 5)]
    assert "key_hash" not in listed[0]
    r = await aclient.delete(f"/api/v1/opendata/keys/{key_id}", headers=admin)
    assert r.status_code == 204
    aplatform.opendata.keys._verified.clear()
    r = await aclient.get(f"{A}/package_list", headers={"X-CKAN-API-Key": key})
    assert r.status_code == 401 and r.json()["error"]["__type"] == "Authorization Error"
    r = await aclient.get(f"{A}/package_list", headers={"X-CKAN-API-Key": "od_forged_key"})
    assert r.status_code == 401


async def test_anonymous_limit_and_required_key(aplatform: Any, aclient: Any) -> None:
    keys = aplatform.opendata.keys
    settings = aplatform.settings
    keys._monotonic = lambda: 1000.0          # time stands still: no refill between requests
    for _ in range(settings.opendata_anonymous_rate_per_min):
        assert (await aclient.get(f"{A}/package_list")).status_code == 200
    r = await aclient.get(f"{A}/package_list")
    assert r.status_code == 429
    keys._buckets.clear()
    aplatform.settings = settings.model_copy(update={"opendata_require_key": True})
    r = await aclient.get(f"{A}/package_list")
    assert r.status_code == 401 and r.json()["success"] is False
    r = await aclient.get("/api/v1/opendata/catalog.jsonld")
    assert r.status_code == 401
    # platform tokens still work (staff), and so do keys
    r = await aclient.get(f"{A}/package_list", headers=bearer(await token_for(aplatform, "analyst")))
    assert r.status_code == 200
