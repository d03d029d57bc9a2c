"""Property tests: random well-typed filters parse, compile and run on SQLite; junk and mutated filters either
parse or raise QueryError, never anything else."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, select

from citydata.sensorthings import model as m
from citydata.sensorthings import schema as s
from citydata.sensorthings.query import (
    QueryError,
    compile_filter,
    compile_orderby,
    parse_filter,
    parse_query,
    register_sqlite_functions,
)
from citydata.store import schema

OBS = m.OBSERVATION
T0 = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def engine() -> Engine:
    """An in-memory SQLite database (sync driver, same dialect) with a few rows of every kind."""
    eng = create_engine("sqlite://")
    event.listen(eng, "connect", lambda conn, _rec: register_sqlite_functions(conn))
    schema.metadata.create_all(eng)
    point = {"type": "Point", "coordinates": [98.2965, 7.8961]}
    with eng.begin() as conn:
        conn.execute(s.things.insert(), [{"id": 1, "name": "Patong", "description": "d",
                                          "properties": {"owner": "PAO", "n": 2}}])
        conn.execute(s.sensors.insert(), [{"id": 1, "name": "s", "description": "d", "encoding_type": "x",
                                           "metadata": "x"}])
        conn.execute(s.observed_properties.insert(), [{"id": 1, "name": "p", "definition": "x",
                                                       "description": "d"}])
        conn.execute(s.datastreams.insert(), [{
            "id": 1, "name": "rain", "description": "d", "unit_of_measurement": {"symbol": "mm"},
            "observation_type": m.OM_MEASUREMENT, "thing_id": 1, "sensor_id": 1, "observed_property_id": 1,
            "phenomenon_time_start": T0, "phenomenon_time_end": T0 + timedelta(hours=2)}])
        conn.execute(s.features_of_interest.insert(), [{"id": 1, "name": "f", "description": "d",
                                                        "encoding_type": "x", "feature": point}])
        conn.execute(schema.observations.insert(), [
            {"id": 1, "datastream_id": 1, "phenomenon_time": T0, "result_number": 1.5, "result_json": None,
             "foi_id": 1, "parameters": {"depth": 2}, "phenomenon_time_end": None},
            {"id": 2, "datastream_id": 1, "phenomenon_time": T0 + timedelta(hours=1), "result_number": None,
             "result_json": "wet", "foi_id": 1, "parameters": None, "phenomenon_time_end": T0 + timedelta(hours=3)},
        ])
    return eng


def run(text: str) -> None:
    """Parse, compile and execute ``text`` as an Observations filter (and as an ordering if it parses as one)."""
    expr = parse_filter(text, OBS)
    compiled = compile_filter(expr, OBS, dialect="sqlite")
    assert compiled.residual is None and compiled.where is not None
    with engine().connect() as conn:
        conn.execute(select(OBS.table.c.id).where(compiled.where)).all()


# -- a grammar of well-typed filters on Observations -------------------------------------------------------------

def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def datetime_text(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


text_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
                      max_size=8)
numbers = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: repr(f) if "e" not in repr(f) else "1.5e3"))
datetimes = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1),
                         timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)),
                                                    timezone(-timedelta(hours=3, minutes=30))]))
num_atoms = st.one_of(numbers, st.sampled_from(["id", "result", "parameters/depth", "Datastream/id",
                                                "FeatureOfInterest/id", "Datastream/Thing/properties/n"]))
str_atoms = st.one_of(text_values.map(quoted), st.sampled_from(
    ["Datastream/name", "Datastream/Thing/name", "FeatureOfInterest/name", "Datastream/unitOfMeasurement/symbol",
     "Datastream/Thing/properties/owner", "result"]))
time_atoms = st.one_of(datetimes.map(datetime_text), st.sampled_from(
    ["phenomenonTime", "resultTime", "validTime", "Datastream/phenomenonTime", "now()", "mindatetime()",
     "maxdatetime(phenomenonTime)"]))


def num_expr(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return num_atoms
    sub, s_, t_ = num_expr(depth - 1), str_expr(depth - 1), time_atoms
    return st.one_of(
        num_atoms,
        st.tuples(sub, st.sampled_from(["add", "sub", "mul", "div", "mod"]), sub)
        .map(lambda x: f"({x[0]} {x[1]} {x[2]})"),
        st.tuples(st.sampled_from(["round", "floor", "ceiling"]), sub).map(lambda x: f"{x[0]}({x[1]})"),
        st.tuples(st.sampled_from(["length"]), s_).map(lambda x: f"{x[0]}({x[1]})"),
        st.tuples(s_, s_).map(lambda x: f"indexof({x[0]}, {x[1]})"),
        st.tuples(st.sampled_from(["year", "month", "day", "hour", "minute", "second", "fractionalseconds",
                                   "totaloffsetminutes"]), t_).map(lambda x: f"{x[0]}({x[1]})"),
        sub.map(lambda x: f"-{x}" if not x.startswith("-") else x),
        st.just("geo.distance(FeatureOfInterest/feature, geography'POINT(98.3 7.9)')"),
    )


def str_expr(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return str_atoms
    sub, n_ = str_expr(depth - 1), num_expr(depth - 1)
    return st.one_of(
        str_atoms,
        st.tuples(st.sampled_from(["tolower", "toupper", "trim"]), sub).map(lambda x: f"{x[0]}({x[1]})"),
        st.tuples(sub, sub).map(lambda x: f"concat({x[0]}, {x[1]})"),
        st.tuples(sub, n_).map(lambda x: f"substring({x[0]}, {x[1]})"),
        st.tuples(sub, n_, n_).map(lambda x: f"substring({x[0]}, {x[1]}, {x[2]})"),
    )


def bool_expr(depth: int) -> st.SearchStrategy[str]:
    cmp = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
    n_, s_ = num_expr(min(depth, 2)), str_expr(min(depth, 2))
    atoms = st.one_of(
        st.tuples(n_, cmp, n_).map(lambda x: f"{x[0]} {x[1]} {x[2]}"),
        st.tuples(s_, cmp, s_).map(lambda x: f"{x[0]} {x[1]} {x[2]}"),
        st.tuples(time_atoms, cmp, time_atoms).map(lambda x: f"{x[0]} {x[1]} {x[2]}"),
        st.tuples(st.sampled_from(["substringof", "startswith", "endswith", "contains"]), s_, s_)
        .map(lambda x: f"{x[0]}({x[1]}, {x[2]})"),
        st.tuples(st.sampled_from(["result", "parameters/depth", "resultTime", "Datastream/Thing/properties/n"]),
                  st.sampled_from(["eq", "ne"])).map(lambda x: f"{x[0]} {x[1]} null"),
        st.sampled_from(["result eq true", "geo.intersects(FeatureOfInterest/feature, geography'POLYGON((98 7, "
                         "99 7, 99 8, 98 8, 98 7))')", "st_disjoint(FeatureOfInterest/feature, "
                         "geometry'POINT(1 2)')", "date(phenomenonTime) eq 2026-03-01",
                         "time(phenomenonTime) lt 12:00:00"]),
    )
    if depth <= 0:
        return atoms
    sub = bool_expr(depth - 1)
    return st.one_of(
        atoms,
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda x: f"({x[0]}) {x[1]} ({x[2]})"),
        sub.map(lambda x: f"not ({x})"),
    )


FILTERS = bool_expr(3)


@SETTINGS
@given(FILTERS)
def test_random_valid_filters_parse_compile_and_run(text: str) -> None:
    run(text)


def mutate(text: str, data: st.DataObject) -> str:
    op = data.draw(st.sampled_from(["delete", "insert", "swap", "truncate", "duplicate"]))
    i = data.draw(st.integers(0, max(len(text) - 1, 0)))
    if op == "delete":
        j = data.draw(st.integers(i, min(len(text), i + 5)))
        return text[:i] + text[j:]
    if op == "insert":
        chunk = data.draw(st.sampled_from(["(", ")", "'", ",", "/", " ", "-", "eq", "not", "and", "1", "x", ".",
                                           "2026-", "geography'", "null", "''"]))
        return text[:i] + chunk + text[i:]
    if op == "swap" and len(text) > 1:
        j = data.draw(st.integers(0, len(text) - 1))
        chars = list(text)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    if op == "truncate":
        return text[:i]
    return text[:i] + text[i:][:5] + text[i:]


def parse_or_query_error(text: str) -> None:
    try:
        run(text)
    except QueryError as err:
        assert 0 <= err.position <= len(text)
        assert err.option == "$filter"


@SETTINGS
@given(FILTERS, st.data())
def test_mutated_filters_parse_or_raise_query_error(text: str, data: st.DataObject) -> None:
    for _ in range(3):
        text = mutate(text, data)
    parse_or_query_error(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("()',/- .0123456789eTZ:+abdnoqrtxlusgy_$@\"#;=")), max_size=40))
def test_junk_from_the_token_alphabet_never_crashes(text: str) -> None:
    parse_or_query_error(text)


@SETTINGS
@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    parse_or_query_error(text)


@SETTINGS
@given(st.sampled_from(["$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count", "$resultFormat"]),
       st.lists(st.sampled_from([
           *"()',/;=$ 0123456789abcdenoprstxyz", "Datastreams", "Observations", "$top=", "$select=", "$expand=",
           "$filter=", "name", "id", " desc"]),
           max_size=25).map("".join))
def test_random_query_options_parse_or_raise_query_error(option: str, value: str) -> None:
    try:
        query = parse_query({option: value}, m.THING)
        if query.orderby:
            order: list[Any] = compile_orderby(query.orderby, m.THING, dialect="sqlite")
            with engine().connect() as conn:
                conn.execute(select(m.THING.table.c.id).order_by(*order)).all()
    except QueryError as err:
        assert err.option == option
        assert 0 <= err.position <= len(value)
