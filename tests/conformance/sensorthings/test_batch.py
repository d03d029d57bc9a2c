"""Conformance class: batch requests (OGC 18-088, /conf/batch-request), in the JSON batch format.

The 1.1 text adapts OData 4.0 multipart batches; this platform serves the OData 4.01 JSON batch format at
``/v1.1/$batch`` (``{"requests": [{"id", "method", "url", "body", "atomicityGroup"}]}`` →
``{"responses": [{"id", "status", "headers"/"location", "body"}]}``), with atomicity groups as change sets and
``$<id>`` referencing an entity created earlier in the same batch.
"""

from __future__ import annotations

from typing import Any

from tests.conformance.sensorthings.conftest import CELSIUS, OM_MEASUREMENT, Sta, lit, path, unique


def batch(sta: Sta, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    r = sta.post("$batch", {"requests": requests})
    assert r.status_code == 200, (r.status_code, r.text[:800])
    body = r.json()
    responses = body["responses"]
    assert isinstance(responses, list)
    return {str(resp["id"]): resp for resp in responses}


def location_of(resp: dict[str, Any]) -> str:
    headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
    loc = headers.get("location") or resp.get("location")
    assert isinstance(loc, str) and loc, resp
    return loc


def test_batch_runs_each_request_and_answers_in_order(sta: Sta) -> None:
    """/req/batch-request/batch-request: a batch of independent requests (GET, POST, PATCH, GET of a missing
    entity) is answered with one response per request, with its own status, in request order."""
    thing = sta.thing()
    name = unique("batch")
    got = sta.post("$batch", {"requests": [
        {"id": "r0", "method": "get", "url": path("Things", thing["@iot.id"])},
        {"id": "r1", "method": "post", "url": "Things", "body": {"name": name, "description": "from batch"}},
        {"id": "r2", "method": "patch", "url": path("Things", thing["@iot.id"]), "body": {"description": "batched"}},
        {"id": "r3", "method": "get", "url": path("Things", 987654321)},
    ]})
    assert got.status_code == 200, got.text
    responses = got.json()["responses"]
    assert [str(r["id"]) for r in responses] == ["r0", "r1", "r2", "r3"]
    r0, r1, r2, r3 = responses
    assert r0["status"] == 200 and r0["body"]["@iot.id"] == thing["@iot.id"]
    assert r1["status"] == 201
    created = sta.get_ok(location_of(r1))
    assert created["name"] == name
    assert r2["status"] in (200, 204)
    assert r3["status"] == 404
    assert sta.get_ok(path("Things", thing["@iot.id"]))["description"] == "batched"


def test_batch_urls_may_carry_query_options(sta: Sta) -> None:
    """/req/batch-request/batch-request: a GET inside a batch takes query options like a direct request."""
    thing = sta.thing()
    res = batch(sta, [{"id": "q", "method": "get",
                       "url": f"Things?$filter=name eq {lit(thing['name'])}&$select=name"}])
    assert res["q"]["status"] == 200
    assert res["q"]["body"]["value"] == [{"name": thing["name"]}]


def test_change_set_references_earlier_results_by_id(sta: Sta) -> None:
    """/req/batch-request/batch-request (change sets, referencing new entities): inside an atomicity group a
    later request uses $<id> for an entity created by an earlier one, in a body link and at the start of a URL."""
    name = unique("cs")
    op = sta.observed_property()
    res = batch(sta, [
        {"id": "thing1", "atomicityGroup": "g1", "method": "post", "url": "Things",
         "body": {"name": name, "description": "d"}},
        {"id": "sensor1", "atomicityGroup": "g1", "method": "post", "url": "Sensors",
         "body": {"name": f"{name}-s", "description": "s", "encodingType": "application/pdf", "metadata": "m"}},
        {"id": "ds1", "atomicityGroup": "g1", "method": "post", "url": "$thing1/Datastreams",
         "body": {"name": f"{name}-ds", "description": "d", "unitOfMeasurement": CELSIUS,
                  "observationType": OM_MEASUREMENT, "Sensor": {"@iot.id": "$sensor1"},
                  "ObservedProperty": {"@iot.id": op["@iot.id"]}}},
    ])
    for rid in ("thing1", "sensor1", "ds1"):
        assert res[rid]["status"] == 201, res[rid]
    thing = sta.get_ok(location_of(res["thing1"]))
    sensor = sta.get_ok(location_of(res["sensor1"]))
    ds = sta.get_ok(location_of(res["ds1"]))
    assert sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Thing")["@iot.id"] == thing["@iot.id"]
    assert sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Sensor")["@iot.id"] == sensor["@iot.id"]


def test_change_set_is_atomic(sta: Sta) -> None:
    """/req/batch-request/batch-request (change sets): when one request of an atomicity group fails, none of the
    group's changes persist; requests outside the group are unaffected."""
    name = unique("atom")
    res = batch(sta, [
        {"id": "ok", "atomicityGroup": "g1", "method": "post", "url": "Things",
         "body": {"name": name, "description": "would be created"}},
        {"id": "bad", "atomicityGroup": "g1", "method": "post", "url": "Things",
         "body": {"description": "no name"}},
        {"id": "outside", "method": "post", "url": "Things", "body": {"name": f"{name}-out", "description": "d"}},
    ])
    for rid in ("ok", "bad"):
        if rid in res:
            assert not 200 <= int(res[rid]["status"]) < 300, res[rid]
    assert "ok" in res or "bad" in res, "the failed atomicity group must be reported"
    assert sta.all_pages("Things", {"$filter": f"name eq {lit(name)}"}) == []
    assert res["outside"]["status"] == 201
    assert len(sta.all_pages("Things", {"$filter": f"name eq {lit(name + '-out')}"})) == 1


def test_batch_deletes_and_reports_failures_per_request(sta: Sta) -> None:
    """/req/batch-request/batch-request: a failing request outside a change set does not stop the others."""
    a, b = sta.thing(), sta.thing()
    res = batch(sta, [
        {"id": "1", "method": "delete", "url": path("Things", a["@iot.id"])},
        {"id": "2", "method": "post", "url": "Things", "body": {"description": "invalid"}},
        {"id": "3", "method": "delete", "url": path("Things", b["@iot.id"])},
    ])
    assert res["1"]["status"] in (200, 204)
    assert res["2"]["status"] == 400
    assert res["3"]["status"] in (200, 204)
    assert sta.get(path("Things", a["@iot.id"])).status_code == 404
    assert sta.get(path("Things", b["@iot.id"])).status_code == 404


def test_batch_writes_need_a_token(sta: Sta) -> None:
    """Platform rule (DESIGN §3): a batch is authorised like its requests; an anonymous write is refused."""
    name = unique("anon")
    r = sta.anon.post(sta.url("$batch"), json={"requests": [
        {"id": "1", "method": "post", "url": "Things", "body": {"name": name, "description": "d"}}]})
    if r.status_code == 200:
        [resp] = r.json()["responses"]
        assert resp["status"] in (401, 403)
    else:
        assert r.status_code in (401, 403)
    assert sta.all_pages("Things", {"$filter": f"name eq {lit(name)}"}) == []


def test_malformed_batch_is_400(sta: Sta) -> None:
    """/req/batch-request/batch-request: a body that is not a batch is a 400."""
    r = sta.post("$batch", {"not": "a batch"})
    assert r.status_code == 400
