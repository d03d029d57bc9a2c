"""Parsing the request options of OGC 18-088 section 9.3 into the AST, and the errors for bad ones."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from citydata.errors import ValidationFailed
from citydata.sensorthings import model as m
from citydata.sensorthings.query import (
    Binary,
    Call,
    Expand,
    Literal,
    OrderBy,
    Path,
    Query,
    QueryError,
    Unary,
    parse_filter,
    parse_query,
)


def lit(value: object, kind: str, pos: int) -> Literal:
    return Literal(value, kind, pos)  # type: ignore[arg-type]


def test_standard_filter_example_result_and_navigation() -> None:
    expr = parse_filter("result le 3.5 and FeatureOfInterest/id eq 1", m.OBSERVATION)
    assert expr == Binary(
        "and",
        Binary("le", Path((), "result", (), 0), lit(3.5, "number", 10), 7),
        Binary("eq", Path(("FeatureOfInterest",), "id", (), 18), lit(1, "number", 42), 39),
        14)


@pytest.mark.parametrize(("entity", "text"), [
    (m.OBSERVATION, "result le 3.5 and FeatureOfInterest/id eq 1"),
    (m.LOCATION, "geo.intersects(location, geography'POLYGON ((30 10, 10 20, 20 40, 40 40, 30 10))')"),
    (m.THING, "substringof('room', name)"),
    (m.OBSERVATION, "year(phenomenonTime) eq 2026"),
    (m.OBSERVATION, "phenomenonTime ge 2026-11-21T09:30:00Z and phenomenonTime lt 2026-11-22T00:00:00.5+07:00"),
    (m.OBSERVATION, "Datastream/Thing/name eq 'x'"),
    (m.OBSERVATION, "Datastream/id eq 1 or Datastream/unitOfMeasurement/symbol eq 'mm'"),
    (m.THING, "Datastreams/name eq 'x'"),
    (m.THING, "properties/owner eq 'PAO' and properties/tags/0 eq 'x'"),
    (m.OBSERVATION, "parameters/depth gt 2"),
    (m.OBSERVATION, "geo.distance(FeatureOfInterest/feature, geography'POINT(98.3 7.9)') lt 0.1"),
    (m.LOCATION, "st_within(location, geometry'MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))')"),
    (m.LOCATION, "st_relate(location, geometry'LINESTRING(0 0, 1 1)', 'T********')"),
    (m.LOCATION, "geo.length(location) gt 1e-3 and geo.length(location) lt 2.5E+2"),
    (m.THING, "endswith(name, 'x') or startswith(name, 'y') or length(name) eq 3 or indexof(name, 'a') eq -1"),
    (m.THING, "substring(name, 1) eq 'a' or substring(name, 1, 2) eq 'ab' or tolower(name) eq toupper(name)"),
    (m.THING, "trim(concat(name, ' ')) eq name and contains(description, 'x')"),
    (m.OBSERVATION, "month(resultTime) eq 11 and day(resultTime) eq 21 and hour(resultTime) eq 9"),
    (m.OBSERVATION, "minute(phenomenonTime) eq 30 and second(phenomenonTime) eq 0"),
    (m.OBSERVATION, "fractionalseconds(phenomenonTime) eq 0.5 and totaloffsetminutes(phenomenonTime) eq 0"),
    (m.OBSERVATION, "date(phenomenonTime) eq 2026-11-21 and time(phenomenonTime) lt 09:30:00.25"),
    (m.OBSERVATION, "phenomenonTime lt now() and phenomenonTime gt mindatetime() and validTime lt maxdatetime()"),
    (m.OBSERVATION, "round(result) eq 3 and floor(result) eq 2 and ceiling(result) eq 3"),
    (m.OBSERVATION, "result add 1 sub 2 mul 3 div 4 mod 5 eq -0.5"),
    (m.OBSERVATION, "not (result eq null) and result ne true and result ne false"),
    (m.DATASTREAM, "phenomenonTime gt 2026-01-01T00:00:00Z and Observations/result gt 1"),
    (m.HISTORICAL_LOCATION, "time gt 2026-01-01T00:00:00Z and Locations/name eq 'a'"),
    (m.MULTI_DATASTREAM, "ObservedProperties/name eq 'rain'"),
    (m.THING, "name eq 'it''s'"),
    (m.THING, "((name eq 'a'))"),
    (m.THING, "@iot.id eq 1"),
])
def test_valid_filters_parse(entity: m.Entity, text: str) -> None:
    parse_filter(text, entity)


def test_literals() -> None:
    def right(text: str) -> object:
        expr = parse_filter(f"result eq {text}", m.OBSERVATION)
        assert isinstance(expr, Binary)
        assert isinstance(expr.right, Literal)
        return expr.right.value

    assert right("'it''s'") == "it's"
    assert right("''") == ""
    assert right("42") == 42 and isinstance(right("42"), int)
    assert right("-7") == -7
    assert right("3.25") == 3.25
    assert right("1e3") == 1000.0
    assert right("2.5E-2") == 0.025
    assert right("true") is True and right("false") is False and right("null") is None
    assert right("2026-11-21T09:30:00Z") == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    assert right("2026-11-21T09:30:00+07:00") == datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
    assert right("2026-11-21T09:30:00.123456789-02:30") == datetime(
        2026, 11, 21, 9, 30, 0, 123456, tzinfo=timezone(-timedelta(hours=2, minutes=30)))
    assert right("2026-11-21T09:30Z") == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    assert right("2026-11-21") == date(2026, 11, 21)
    assert right("09:30:05.5") == time(9, 30, 5, 500000)
    point = right("geography'POINT(98.3 7.9)'")
    assert point.geom_type == "Point" and (point.x, point.y) == (98.3, 7.9)  # type: ignore[attr-defined]
    assert right("geometry'SRID=4326;LINESTRING(0 0, 1 1)'").geom_type == "LineString"  # type: ignore[attr-defined]


def test_json_paths_and_navigation_are_resolved() -> None:
    expr = parse_filter("Datastream/Thing/properties/tags/0 eq 'x'", m.OBSERVATION)
    assert isinstance(expr, Binary)
    assert expr.left == Path(("Datastream", "Thing"), "properties", ("tags", 0), 0)
    expr = parse_filter("properties/and eq 1", m.THING)      # operator words are fine as JSON keys
    assert isinstance(expr, Binary) and expr.left == Path((), "properties", ("and",), 0)


@pytest.mark.parametrize(("text", "shape"), [
    ("a eq 1 or b eq 2 and c eq 3", "(or (eq a 1) (and (eq b 2) (eq c 3)))"),
    ("a eq 1 and b eq 2 or c eq 3", "(or (and (eq a 1) (eq b 2)) (eq c 3))"),
    ("not a eq 1 and b eq 2", "(and (not (eq a 1)) (eq b 2))"),
    ("a eq 1 and not b eq 2", "(and (eq a 1) (not (eq b 2)))"),
    ("not not a eq 1", "(not (not (eq a 1)))"),
    ("not (a eq 1 or b eq 2)", "(not (or (eq a 1) (eq b 2)))"),
    ("a add 2 mul 3 eq 7", "(eq (add a (mul 2 3)) 7)"),
    ("a sub 2 sub 3 eq 1", "(eq (sub (sub a 2) 3) 1)"),
    ("(a add 2) mul 3 gt 7", "(gt (mul (add a 2) 3) 7)"),
    ("a div 2 mod 3 le 1", "(le (mod (div a 2) 3) 1)"),
    ("a gt 1 eq true", "(eq (gt a 1) true)"),
    ("-a add 1 lt 0", "(lt (add (neg a) 1) 0)"),
    ("a eq 1 OR b eq 2 AND c Eq 3", "(or (eq a 1) (and (eq b 2) (eq c 3)))"),
])
def test_precedence(text: str, shape: str) -> None:
    def show(e: object) -> str:
        if isinstance(e, Binary):
            return f"({e.op} {show(e.left)} {show(e.right)})"
        if isinstance(e, Unary):
            return f"({e.op} {show(e.operand)})"
        if isinstance(e, Literal):
            return str(e.value).lower()
        if isinstance(e, Path):
            return e.json_path[0] if isinstance(e.json_path[0], str) else "?"
        assert isinstance(e, Call)
        return e.name

    # a, b, c are JSON keys of Thing.properties, so any expression shape is valid
    text = re.sub(r"\b([abc])\b", r"properties/\1", text)
    assert show(parse_filter(text, m.THING)) == shape


@pytest.mark.parametrize(("entity", "text", "position", "message"), [
    (m.THING, "name eq 'x' foo", 12, "unexpected token 'foo'"),
    (m.THING, "name eq", 7, "unexpected end of input"),
    (m.THING, "", 0, "empty expression"),
    (m.THING, "nmae eq 'x'", 0, "unknown property 'nmae' of Thing"),
    (m.OBSERVATION, "Datastream/Thing/nmae eq 'x'", 17, "unknown property 'nmae' of Thing"),
    (m.OBSERVATION, "Datastream eq 1", 0, "navigation 'Datastream' needs a property"),
    (m.THING, "name/first eq 'x'", 5, "no sub-properties"),
    (m.THING, "name eq 'x", 8, "unterminated string"),
    (m.THING, "(name eq 'x'", 12, "unexpected end of input"),
    (m.THING, "name eq 'x')", 11, "unexpected token ')'"),
    (m.THING, "frobnicate(name) eq 1", 0, "unknown function 'frobnicate'"),
    (m.THING, "length(name, 2) eq 1", 0, "length takes 1 argument, got 2"),
    (m.THING, "substring(name) eq 'a'", 14, "substring takes 2 to 3 arguments, got 1"),
    (m.THING, "name eq 'x' and", 15, "unexpected end of input"),
    (m.THING, "name eq 'x' # 1", 12, "unexpected character '#'"),
    (m.OBSERVATION, "phenomenonTime gt 2026-13-01T00:00:00Z", 18, "invalid datetime"),
    (m.OBSERVATION, "phenomenonTime gt 2026-02-30", 18, "invalid date"),
    (m.LOCATION, "geo.intersects(location, geography'POINT(1)')", 25, "invalid WKT"),
    (m.LOCATION, "geo.intersects(location, geography'POLYGON EMPTY')", 25, "unsupported geometry"),
    (m.THING, "name eq duration'P1D'", 8, "unsupported literal prefix 'duration'"),
    (m.THING, "id eq 12abc", 6, "invalid number"),
    (m.THING, "name eq eq", 8, "unknown property 'eq'"),
    (m.THING, "properties/) eq 1", 11, "expected a property name, found ')'"),
    (m.THING, "name eq 'a' and and", 16, "unknown property 'and'"),
    (m.THING, "name eq 'a' or (", 16, "unexpected end of input"),
])
def test_bad_filters_give_the_exact_position(entity: m.Entity, text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_filter(text, entity)
    err = info.value
    assert (err.option, err.position) == ("$filter", position)
    assert message in err.message
    assert err.message.startswith("$filter: ") and err.message.endswith(f"at position {position}")
    assert isinstance(err, ValidationFailed) and err.code == "invalid_query" and err.status == 400
    assert err.problem()["position"] == position


def test_query_options() -> None:
    q = parse_query({"$filter": "name eq 'a'", "$orderby": "name desc, id ASC", "$select": "id,name,Datastreams",
                     "$top": "5", "$skip": "10", "$count": "true", "other": "ignored"}, m.THING)
    assert q.filter is not None
    assert q.orderby == [OrderBy(Path((), "name", (), 0), True), OrderBy(Path((), "id", (), 11), False)]
    assert q.select == ["id", "name", "Datastreams"]
    assert (q.top, q.skip, q.count, q.result_format) == (5, 10, True, None)
    assert parse_query({}, m.THING) == Query()
    assert parse_query({"$top": "99999"}, m.THING, max_top=100).top == 100
    assert parse_query({"$count": "false", "$resultFormat": "dataArray"}, m.OBSERVATION).result_format == "dataArray"
    ordered = parse_query({"$orderby": "phenomenonTime desc,id"}, m.OBSERVATION).orderby
    assert [(o.expr, o.descending) for o in ordered] == [(Path((), "phenomenonTime", (), 0), True),
                                                        (Path((), "id", (), 20), False)]
    assert parse_query({"$orderby": "year(phenomenonTime) Desc"}, m.OBSERVATION).orderby[0].descending


def test_expand_paths_and_nested_options() -> None:
    q = parse_query({"$expand": "Datastreams/Observations/FeatureOfInterest"}, m.THING)
    assert q.expand == [Expand(["Datastreams", "Observations", "FeatureOfInterest"], Query())]

    q = parse_query({"$expand": "Datastreams($select=id,name;$expand=Observations($top=5))"}, m.THING)
    assert q.expand == [Expand(["Datastreams"], Query(select=["id", "name"],
                                                      expand=[Expand(["Observations"], Query(top=5))]))]

    q = parse_query({"$expand": "Datastreams($select=name;$top=2;$orderby=id desc;$expand=Observations($top=1)),"
                                " Locations"}, m.THING)
    ds, loc = q.expand
    assert ds.path == ["Datastreams"] and loc == Expand(["Locations"], Query())
    assert ds.query.select == ["name"] and ds.query.top == 2
    assert ds.query.orderby == [OrderBy(Path((), "id", (), 41), True)]
    assert ds.query.expand == [Expand(["Observations"], Query(top=1))]

    q = parse_query({"$expand": "Datastreams/Observations($filter=result gt 1 and substringof('a;b)', "
                                "Datastream/name);$count=true)"}, m.THING)
    (item,) = q.expand
    assert item.path == ["Datastreams", "Observations"] and item.query.count
    assert isinstance(item.query.filter, Binary)


@pytest.mark.parametrize(("params", "option", "position", "message"), [
    ({"$top": "-1"}, "$top", 0, "non-negative integer"),
    ({"$top": "abc"}, "$top", 0, "non-negative integer"),
    ({"$top": "1.5"}, "$top", 0, "non-negative integer"),
    ({"$skip": "-3"}, "$skip", 0, "non-negative integer"),
    ({"$count": "yes"}, "$count", 0, "true or false"),
    ({"$resultFormat": "csv"}, "$resultFormat", 0, "unsupported $resultFormat"),
    ({"$frobnicate": "1"}, "$frobnicate", 0, "unknown query option"),
    ({"$select": "id,nmae"}, "$select", 3, "unknown property 'nmae'"),
    ({"$select": "id,,name"}, "$select", 3, "expected a property name"),
    ({"$select": ""}, "$select", 0, "unexpected end of input"),
    ({"$orderby": "name sideways"}, "$orderby", 5, "expected ',', found 'sideways'"),
    ({"$orderby": ""}, "$orderby", 0, "empty $orderby"),
    ({"$orderby": "nmae"}, "$orderby", 0, "unknown property"),
    ({"$filter": "name eq 'x' foo"}, "$filter", 12, "unexpected token 'foo'"),
    ({"$expand": "Datastreams/Nope"}, "$expand", 12, "unknown navigation property 'Nope' of Datastream"),
    ({"$expand": "Datastreams($top=1"}, "$expand", 11, "unbalanced parenthesis"),
    ({"$expand": "Datastreams($top=x)"}, "$expand", 17, "non-negative integer"),
    ({"$expand": "Datastreams($frob=1)"}, "$expand", 12, "unknown query option '$frob'"),
    ({"$expand": "Datastreams($top)"}, "$expand", 12, "expected an option"),
    ({"$expand": "Datastreams($filter=nmae eq 1)"}, "$expand", 20, "unknown property 'nmae' of Datastream"),
    ({"$expand": "Datastreams($expand=Observations($filter=result gt))"}, "$expand", 50, "unexpected end"),
    ({"$expand": "Datastreams($top=1;$top=2)"}, "$expand", 19, "repeated query option"),
    ({"$expand": "Datastreams Locations"}, "$expand", 12, "expected ',' or '('"),
])
def test_bad_options(params: dict[str, str], option: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(params, m.THING)
    assert (info.value.option, info.value.position) == (option, position)
    assert message in info.value.message
