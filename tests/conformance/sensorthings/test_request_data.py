"""Conformance class: Sensing Core / request data (OGC 18-088, /conf/request-data).

Query options ($expand, $select, $orderby, $top, $skip, $count, $filter) and server-driven paging. Every query is
scoped to entities this module created (a unique tag in their names, or one Datastream's Observations), so the
shared database can hold anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance.sensorthings.conftest import GEOJSON, Sta, lit, path, point, unique

SERIES = 12  # observations i = 0..11: result i + 0.25, phenomenonTime 2024-05-01T<i>:00:00Z


@dataclass
class Series:
    ds: dict[str, Any]
    obs: list[dict[str, Any]]      # in creation order, index i has result i + 0.25

    @property
    def rel(self) -> str:
        return f"{path('Datastreams', self.ds['@iot.id'])}/Observations"

    def ids(self, *indexes: int) -> set[Any]:
        return {self.obs[i]["@iot.id"] for i in indexes}


@pytest.fixture(scope="module")
def series(sta: Sta) -> Series:
    ds = sta.located_datastream()
    obs = [sta.observation(ds, i + 0.25, f"2024-05-01T{i:02d}:00:00Z", resultTime=f"2024-05-02T{i:02d}:30:00Z")
           for i in range(SERIES)]
    return Series(ds, obs)


@dataclass
class Named:
    tag: str
    things: dict[str, dict[str, Any]]   # suffix → entity


@pytest.fixture(scope="module")
def named(sta: Sta) -> Named:
    """Things whose names share a unique tag: '<tag>Alpha Bay', '<tag>beta', '<tag>Gamma'."""
    tag = unique("rq").replace("-", "")
    things = {
        "Alpha Bay": sta.thing(name=f"{tag}Alpha Bay", description="  padded  ",
                               properties={"owner": "city", "level": 2}),
        "beta": sta.thing(name=f"{tag}beta", description="b", properties={"owner": "port", "level": 5}),
        "Gamma": sta.thing(name=f"{tag}Gamma", description="c", properties={"owner": "city", "level": 9}),
    }
    return Named(tag, things)


def filtered(sta: Sta, rel: str, expr: str, **params: Any) -> list[dict[str, Any]]:
    return sta.all_pages(rel, {"$filter": expr, **params})


def obs_ids(sta: Sta, series: Series, expr: str) -> set[Any]:
    return {o["@iot.id"] for o in filtered(sta, series.rel, expr)}


def thing_names(sta: Sta, named: Named, expr: str) -> set[str]:
    got = filtered(sta, "Things", f"startswith(name, {lit(named.tag)}) and ({expr})")
    return {t["name"][len(named.tag):] for t in got}


# -- $filter: operators ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ("result eq 3.25", {3}),
    ("result ne 3.25", set(range(SERIES)) - {3}),
    ("result gt 9.25", {10, 11}),
    ("result ge 9.25", {9, 10, 11}),
    ("result lt 1.25", {0}),
    ("result le 1.25", {0, 1}),
    ("result gt 2 and result lt 5", {2, 3, 4}),
    ("result lt 1 or result gt 10.5", {0, 11}),
    ("not (result lt 10)", {10, 11}),
    ("result add 0.75 eq 4", {3}),
    ("result sub 0.25 eq 3", {3}),
    ("result mul 2 eq 6.5", {3}),
    ("result div 2 eq 1.625", {3}),
    ("result mod 2 eq 1.25", {1, 3, 5, 7, 9, 11}),
    ("(result add 0.75) mul 2 eq 8", {3}),
    ("result add 0.75 mul 2 eq 4.75", {3}),
])
def test_filter_built_in_operators(sta: Sta, series: Series, expr: str, expected: set[int]) -> None:
    """/req/request-data/filter, /req/request-data/built-in-filter-operations: comparison (eq ne gt ge lt le),
    logical (and or not), arithmetic (add sub mul div mod) and grouping with OData precedence."""
    assert obs_ids(sta, series, expr) == series.ids(*expected), expr


@pytest.mark.parametrize(("expr", "expected"), [
    ("phenomenonTime ge 2024-05-01T09:00:00Z", {9, 10, 11}),
    ("phenomenonTime lt 2024-05-01T02:00:00.000Z", {0, 1}),
    ("phenomenonTime eq 2024-05-01T07:00:00+00:00", {7}),
    ("phenomenonTime gt 2024-05-01T10:00:00+07:00", set(range(4, SERIES))),
    ("resultTime le 2024-05-02T00:30:00Z", {0}),
])
def test_filter_on_time_literals(sta: Sta, series: Series, expr: str, expected: set[int]) -> None:
    """/req/request-data/filter: dateTime literals (with offsets) compare as instants."""
    assert obs_ids(sta, series, expr) == series.ids(*expected), expr


@pytest.mark.parametrize(("expr", "expected"), [
    ("year(phenomenonTime) eq 2024 and hour(phenomenonTime) eq 5", {5}),
    ("month(phenomenonTime) eq 5 and day(phenomenonTime) eq 1 and hour(phenomenonTime) lt 2", {0, 1}),
    ("minute(phenomenonTime) eq 0 and second(phenomenonTime) eq 0 and hour(phenomenonTime) ge 10", {10, 11}),
    ("hour(resultTime) eq 3 and minute(resultTime) eq 30", {3}),
    ("fractionalseconds(phenomenonTime) eq 0 and hour(phenomenonTime) eq 4", {4}),
    ("phenomenonTime lt now()", set(range(SERIES))),
    ("phenomenonTime gt mindatetime() and phenomenonTime lt maxdatetime()", set(range(SERIES))),
    ("round(result) eq 3", {3}),
    ("floor(result) eq 4", {4}),
    ("ceiling(result) eq 4", {3}),
])
def test_filter_date_and_math_functions(sta: Sta, series: Series, expr: str, expected: set[int]) -> None:
    """/req/request-data/built-in-query-functions: year, month, day, hour, minute, second, fractionalseconds,
    now, mindatetime, maxdatetime, round, floor, ceiling."""
    assert obs_ids(sta, series, expr) == series.ids(*expected), expr


@pytest.mark.parametrize(("expr", "expected"), [
    ("substringof('Bay', name)", {"Alpha Bay"}),
    ("endswith(name, 'ta')", {"beta"}),
    ("startswith(name, concat({tag}, 'G'))", {"Gamma"}),
    ("length(name) eq length({tag}) add 4", {"beta"}),
    ("indexof(name, 'Gamma') eq length({tag})", {"Gamma"}),
    ("substring(name, length({tag})) eq 'beta'", {"beta"}),
    ("substring(name, length({tag}), 2) eq 'Al'", {"Alpha Bay"}),
    ("tolower(name) eq tolower(concat({tag}, 'GAMMA'))", {"Gamma"}),
    ("toupper(name) eq toupper(concat({tag}, 'BETA'))", {"beta"}),
    ("trim(description) eq 'padded'", {"Alpha Bay"}),
    ("concat(concat(name, '/'), description) eq concat({tag}, 'beta/b')", {"beta"}),
    ("properties/owner eq 'city'", {"Alpha Bay", "Gamma"}),
    ("properties/level gt 4", {"beta", "Gamma"}),
    ("name eq concat({tag}, 'beta') or description eq 'c'", {"beta", "Gamma"}),
])
def test_filter_string_functions(sta: Sta, named: Named, expr: str, expected: set[str]) -> None:
    """/req/request-data/built-in-query-functions: substringof, endswith, startswith, length, indexof, substring,
    tolower, toupper, trim, concat; /req/request-data/filter on properties/<key>."""
    expr = expr.replace("{tag}", lit(named.tag))
    assert thing_names(sta, named, expr) == expected, expr


def test_filter_through_navigation_path(sta: Sta, series: Series) -> None:
    """/req/request-data/filter: a filter may traverse to-one navigation properties
    (Observations?$filter=Datastream/id eq <id> and Datastream/Thing/name eq ...)."""
    thing = sta.get_ok(f"{path('Datastreams', series.ds['@iot.id'])}/Thing")
    ds_id = series.ds["@iot.id"]
    id_lit = lit(ds_id) if isinstance(ds_id, str) else str(ds_id)
    got = {o["@iot.id"] for o in filtered(sta, "Observations", f"Datastream/id eq {id_lit} and result lt 2")}
    assert got == series.ids(0, 1)
    got = {o["@iot.id"] for o in filtered(sta, "Observations",
                                          f"Datastream/Thing/name eq {lit(thing['name'])} and result gt 10.5")}
    assert got == series.ids(11)
    got_ds = filtered(sta, "Datastreams", f"Thing/name eq {lit(thing['name'])}")
    assert [d["@iot.id"] for d in got_ds] == [ds_id]


# -- $filter: geospatial ------------------------------------------------------------------------------------------

@dataclass
class Places:
    tag: str
    ids: dict[str, Any]   # label → @iot.id


@pytest.fixture(scope="module")
def places(sta: Sta) -> Places:
    tag = unique("geo").replace("-", "")
    shapes = {
        "A": point(98.30, 7.90),
        "B": point(98.40, 7.80),
        "C": point(100.50, 13.70),
        "D": {"type": "LineString", "coordinates": [[98.25, 7.75], [98.45, 7.75]]},
        "E": {"type": "Polygon", "coordinates": [[[98.26, 7.76], [98.29, 7.76], [98.29, 7.79], [98.26, 7.79],
                                                  [98.26, 7.76]]]},
    }
    ids = {}
    for label, geom in shapes.items():
        ids[label] = sta.create("Locations", {"name": f"{tag}{label}", "description": "geo", "encodingType": GEOJSON,
                                              "location": geom})["@iot.id"]
    return Places(tag, ids)


PHUKET = "geography'POLYGON((98.2 7.7, 98.5 7.7, 98.5 8.2, 98.2 8.2, 98.2 7.7))'"


@pytest.mark.parametrize(("expr", "expected"), [
    (f"st_within(location, {PHUKET})", {"A", "B", "D", "E"}),
    (f"st_intersects(location, {PHUKET})", {"A", "B", "D", "E"}),
    (f"geo.intersects(location, {PHUKET})", {"A", "B", "D", "E"}),
    (f"st_disjoint(location, {PHUKET})", {"C"}),
    ("st_equals(location, geography'POINT(98.3 7.9)')", {"A"}),
    ("geo.distance(location, geography'POINT(98.3 7.9)') lt 0.01", {"A"}),
    ("geo.distance(location, geography'POINT(98.3 7.9)') gt geo.distance(location, geography'POINT(98.45 7.75)')",
     {"B", "D"}),
    ("geo.length(location) gt 0.15", {"D"}),
    ("st_crosses(location, geography'LINESTRING(98.35 7.6, 98.35 7.9)')", {"D"}),
    ("st_touches(location, geography'POLYGON((98.3 7.9, 98.35 7.9, 98.35 7.95, 98.3 7.95, 98.3 7.9))')", {"A"}),
    ("st_overlaps(location, geography'POLYGON((98.28 7.78, 98.31 7.78, 98.31 7.81, 98.28 7.81, 98.28 7.78))')",
     {"E"}),
    ("st_contains(location, geography'POINT(98.27 7.77)')", {"E"}),
    ("st_relate(location, geography'POINT(98.3 7.9)', 'T********')", {"A"}),
])
def test_filter_geospatial_functions(sta: Sta, places: Places, expr: str, expected: set[str]) -> None:
    """/req/request-data/built-in-query-functions (geospatial): geo.distance, geo.length, geo.intersects,
    st_equals, st_disjoint, st_touches, st_within, st_overlaps, st_crosses, st_intersects, st_contains,
    st_relate, with WKT geography literals."""
    got = filtered(sta, "Locations", f"startswith(name, {lit(places.tag)}) and {expr}")
    assert {loc["name"][len(places.tag):] for loc in got} == expected, expr


# -- $filter errors -------------------------------------------------------------------------------------------

def test_bad_filter_is_400_with_position(sta: Sta) -> None:
    """/req/request-data/query-status-code: an invalid $filter fails with 400 Bad Request; the problem detail
    names where the expression went wrong (the offset of the second 'and')."""
    expr = "result gt 5 and and name eq 'x'"
    r = sta.get("Observations", {"$filter": expr})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 400
    offset = expr.index("and and") + 4
    assert re.search(rf"\b({offset}|{offset + 1})\b", body["detail"]), body


@pytest.mark.parametrize("params", [
    {"$filter": "nosuchproperty eq 1"},
    {"$filter": "result eq"},
    {"$filter": "substringof('x')"},
    {"$orderby": "nosuchproperty"},
    {"$select": "nosuchproperty"},
    {"$expand": "NoSuchNavigation"},
    {"$top": "-1"},
    {"$top": "many"},
    {"$skip": "-3"},
    {"$count": "maybe"},
])
def test_invalid_query_options_are_400(sta: Sta, params: dict[str, str]) -> None:
    """/req/request-data/query-status-code: a query option that is invalid for the resource is a 400."""
    r = sta.get("Observations", params)
    assert r.status_code == 400, (params, r.status_code, r.text[:300])


# -- $expand ------------------------------------------------------------------------------------------------------

def test_expand_navigation_properties(sta: Sta, series: Series) -> None:
    """/req/request-data/expand: $expand inlines related entities: an object for a to-one link, an array for a
    to-many link."""
    got = sta.get_ok(path("Datastreams", series.ds["@iot.id"]), {"$expand": "Thing,Sensor,Observations"})
    assert isinstance(got["Thing"], dict) and "@iot.id" in got["Thing"]
    assert isinstance(got["Sensor"], dict) and "name" in got["Sensor"]
    assert {o["@iot.id"] for o in got["Observations"]} == series.ids(*range(SERIES))


def test_expand_nested_path(sta: Sta, series: Series) -> None:
    """/req/request-data/expand: a path expands several levels (Things?$expand=Datastreams/Observations)."""
    thing = sta.get_ok(f"{path('Datastreams', series.ds['@iot.id'])}/Thing")
    got = sta.get_ok("Things", {"$filter": f"name eq {lit(thing['name'])}", "$expand": "Datastreams/Observations"})
    [t] = got["value"]
    [ds] = t["Datastreams"]
    assert ds["@iot.id"] == series.ds["@iot.id"]
    assert {o["@iot.id"] for o in ds["Observations"]} == series.ids(*range(SERIES))


def test_expand_with_nested_options(sta: Sta, series: Series) -> None:
    """/req/request-data/expand: query options inside $expand ($select, $filter, $orderby, $top, $count and a
    nested $expand), separated by ';'."""
    thing = sta.get_ok(f"{path('Datastreams', series.ds['@iot.id'])}/Thing")
    expand = ("Datastreams($select=name;$expand=Observations($filter=result gt 4;$orderby=result desc;$top=2;"
              "$count=true;$select=result))")
    got = sta.get_ok(path("Things", thing["@iot.id"]), {"$expand": expand})
    [ds] = got["Datastreams"]
    assert ds["name"] == series.ds["name"]
    assert "description" not in ds
    assert [o["result"] for o in ds["Observations"]] == [11.25, 10.25]
    for o in ds["Observations"]:
        assert "phenomenonTime" not in o
    assert ds["Observations@iot.count"] == 8


def test_expand_to_one_from_collection(sta: Sta, series: Series) -> None:
    """/req/request-data/expand: Observations?$expand=Datastream($select=name) on a collection."""
    got = sta.get_ok(series.rel, {"$expand": "Datastream($select=name),FeatureOfInterest", "$top": 2})
    for o in got["value"]:
        assert o["Datastream"]["name"] == series.ds["name"]
        assert "unitOfMeasurement" not in o["Datastream"]
        assert "feature" in o["FeatureOfInterest"]


# -- $select ------------------------------------------------------------------------------------------------------

def entity_keys(entity: dict[str, Any]) -> set[str]:
    return {k for k in entity if not k.startswith("@iot.")}


def test_select_returns_only_the_selected_properties(sta: Sta, named: Named) -> None:
    """/req/request-data/select: only the selected properties are returned (no other properties and no
    navigation links)."""
    got = sta.all_pages("Things", {"$filter": f"startswith(name, {lit(named.tag)})", "$select": "name,description"})
    assert len(got) == 3
    for t in got:
        assert entity_keys(t) == {"name", "description"}, t


def test_select_id_and_navigation_property(sta: Sta, named: Named) -> None:
    """/req/request-data/select: $select=id returns @iot.id; selecting a navigation property returns its
    navigationLink."""
    thing = named.things["beta"]
    got = sta.get_ok(path("Things", thing["@iot.id"]), {"$select": "id,Datastreams"})
    assert got["@iot.id"] == thing["@iot.id"]
    assert "name" not in got and "description" not in got
    assert "Datastreams@iot.navigationLink" in got
    assert "Locations@iot.navigationLink" not in got


def test_select_with_expand(sta: Sta, series: Series) -> None:
    """/req/request-data/select with /req/request-data/expand: $select applies to the outer entity only."""
    got = sta.get_ok(path("Datastreams", series.ds["@iot.id"]), {"$select": "name", "$expand": "Thing"})
    assert got["name"] == series.ds["name"] and "description" not in got
    assert isinstance(got["Thing"], dict) and "name" in got["Thing"] and "description" in got["Thing"]


# -- $orderby, $top, $skip, $count --------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["result desc", "result DESC", "result Desc"])
def test_orderby_descending_any_case(sta: Sta, series: Series, order: str) -> None:
    """/req/request-data/orderby: desc in any case sorts descending."""
    got = sta.all_pages(series.rel, {"$orderby": order})
    assert [o["result"] for o in got] == [i + 0.25 for i in reversed(range(SERIES))]


@pytest.mark.parametrize("order", ["result", "result asc", "result ASC", "phenomenonTime aSc"])
def test_orderby_ascending_is_the_default(sta: Sta, series: Series, order: str) -> None:
    """/req/request-data/orderby: asc (any case) or no direction sorts ascending."""
    got = sta.all_pages(series.rel, {"$orderby": order})
    assert [o["result"] for o in got] == [i + 0.25 for i in range(SERIES)]


def test_orderby_several_keys(sta: Sta, named: Named) -> None:
    """/req/request-data/orderby: a comma-separated list orders by the first key, then the next."""
    got = sta.all_pages("Things", {"$filter": f"startswith(name, {lit(named.tag)})",
                                   "$orderby": "properties/owner asc,name desc"})
    assert [t["name"][len(named.tag):] for t in got] == ["Gamma", "Alpha Bay", "beta"]


def test_top(sta: Sta, series: Series) -> None:
    """/req/request-data/top: at most $top entities are returned."""
    got = sta.get_ok(series.rel, {"$top": 3, "$orderby": "result"})
    assert [o["result"] for o in got["value"]] == [0.25, 1.25, 2.25]
    assert sta.get_ok(series.rel, {"$top": 0})["value"] == []


def test_skip(sta: Sta, series: Series) -> None:
    """/req/request-data/skip: the first $skip entities are left out."""
    got = sta.all_pages(series.rel, {"$skip": 9, "$orderby": "result"})
    assert [o["result"] for o in got] == [9.25, 10.25, 11.25]
    assert sta.get_ok(series.rel, {"$skip": 100})["value"] == []


def test_count(sta: Sta, series: Series) -> None:
    """/req/request-data/count: $count=true adds @iot.count, the number of matching entities regardless of
    $top/$skip; $count=false leaves it out."""
    got = sta.get_ok(series.rel, {"$count": "true", "$top": 2, "$filter": "result gt 3"})
    assert got["@iot.count"] == 9
    assert len(got["value"]) == 2
    assert "@iot.count" not in sta.get_ok(series.rel, {"$count": "false", "$top": 1})


def test_query_options_are_applied_in_order(sta: Sta, series: Series) -> None:
    """/req/request-data/order: $filter, then $count, then $orderby, $skip, $top, then $expand and $select."""
    got = sta.get_ok(series.rel, {"$filter": "result lt 8", "$count": "true", "$orderby": "result desc",
                                  "$skip": 1, "$top": 2, "$select": "result"})
    assert got["@iot.count"] == 8
    assert [o["result"] for o in got["value"]] == [6.25, 5.25]
    assert all(entity_keys(o) == {"result"} for o in got["value"])


# -- paging -------------------------------------------------------------------------------------------------------

def test_next_link_pages_to_the_end_without_gaps_or_duplicates(sta: Sta, series: Series) -> None:
    """/req/request-data/pagination: with $top smaller than the result, @iot.nextLink is given and following it
    to the end yields every entity exactly once, in order, keeping $filter/$orderby/$count."""
    pages = []
    page = sta.get_ok(series.rel, {"$top": 5, "$orderby": "result desc", "$filter": "result gt 0.5",
                                   "$count": "true"})
    while True:
        pages.append(page)
        assert page["@iot.count"] == 11
        if "@iot.nextLink" not in page:
            break
        assert len(pages) < 10
        page = sta.get_ok(page["@iot.nextLink"])
    results = [o["result"] for p in pages for o in p["value"]]
    assert results == [i + 0.25 for i in reversed(range(1, SERIES))]
    assert [len(p["value"]) for p in pages] == [5, 5, 1]


def test_server_driven_paging_of_a_large_collection(sta: Sta) -> None:
    """/req/request-data/pagination: a collection larger than the server's page is split with @iot.nextLink; all
    pages together hold each entity once."""
    ds = sta.located_datastream()
    body = [{"Datastream": {"@iot.id": ds["@iot.id"]}, "components": ["phenomenonTime", "result"],
             "dataArray": [[f"2024-06-01T00:{i // 60:02d}:{i % 60:02d}Z", i] for i in range(1200)]}]
    r = sta.post("CreateObservations", body)
    assert r.status_code == 201, f"CreateObservations (used to build a large collection) → {r.status_code}"
    rel = f"{path('Datastreams', ds['@iot.id'])}/Observations"
    first = sta.get_ok(rel)
    if "@iot.nextLink" not in first:    # a server may return everything in one page
        assert len(first["value"]) == 1200
    everything = sta.all_pages(rel)
    ids = [o["@iot.id"] for o in everything]
    assert len(ids) == len(set(ids)) == 1200
    assert sorted(o["result"] for o in everything) == list(range(1200))
