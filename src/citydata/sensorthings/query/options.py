"""The request options of OGC 18-088 section 9.3: ``$filter $orderby $select $expand $top $skip $count
$resultFormat``, parsed into a :class:`Query` and checked against the data model.

``$top`` above ``max_top`` is lowered to ``max_top`` (the server pages with ``@iot.nextLink``). Options nested
in ``$expand`` (``Datastreams($select=name;$top=2;$expand=Observations($top=1))``) report their errors under
``$expand`` with positions in the ``$expand`` text. A slash path in ``$expand`` keeps its steps in
``Expand.path``; its nested options apply to the last step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from citydata.sensorthings.model import ENTITIES, Entity
from citydata.sensorthings.query.ast import Expand, OrderBy, Query, QueryError
from citydata.sensorthings.query.parser import Parser

OPTIONS = ("$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count", "$resultFormat")
NESTED_OPTIONS = ("$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$count")
RESULT_FORMATS = ("dataArray",)
_INT = re.compile(r"\s*(-?\d+)\s*")
_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@]*")
_SPACE = re.compile(r"\s*")


def parse_query(params: Mapping[str, str], entity: Entity, *, max_top: int = 10_000) -> Query:
    """The request options in ``params`` (other, non-``$`` parameters are ignored) as a :class:`Query`."""
    options: dict[str, tuple[str, int]] = {}
    for key, value in params.items():
        if not key.startswith("$"):
            continue
        if key not in OPTIONS:
            raise QueryError(key, 0, f"unknown query option {key!r}")
        options[key] = (value, 0)
    return _build(options, entity, max_top, None)


def _build(options: Mapping[str, tuple[str, int]], entity: Entity, max_top: int, under: str | None) -> Query:
    query = Query()
    for key, (text, base) in options.items():
        option = under or key
        if key == "$filter":
            query.filter = Parser(text, entity, option, base).parse_all()
        elif key == "$orderby":
            query.orderby = parse_orderby(text, entity, option, base)
        elif key == "$select":
            query.select = parse_select(text, entity, option, base)
        elif key == "$expand":
            query.expand = parse_expand(text, entity, max_top, option, base)
        elif key == "$top":
            query.top = min(_non_negative(text, option, base), max_top)
        elif key == "$skip":
            query.skip = _non_negative(text, option, base)
        elif key == "$count":
            if text.strip() not in ("true", "false"):
                raise QueryError(option, base, f"$count must be true or false, not {text[:20]!r}")
            query.count = text.strip() == "true"
        elif key == "$resultFormat":
            if text.strip() not in RESULT_FORMATS:
                raise QueryError(option, base, f"unsupported $resultFormat {text[:20]!r}")
            query.result_format = text.strip()
    return query


def _non_negative(text: str, option: str, base: int) -> int:
    m = _INT.fullmatch(text)
    if m is None or int(m.group(1)) < 0:
        raise QueryError(option, base, f"expected a non-negative integer, found {text[:20]!r}")
    return int(m.group(1))


def parse_orderby(text: str, entity: Entity, option: str = "$orderby", base: int = 0) -> list[OrderBy]:
    parser = Parser(text, entity, option, base)
    if parser.tok.kind == "eof":
        raise parser.error(parser.tok, "empty $orderby")
    items: list[OrderBy] = []
    while True:
        expr = parser.expression()
        descending = False
        if parser.is_word("asc", "desc"):
            descending = str(parser.advance().value).lower() == "desc"
        items.append(OrderBy(expr, descending))
        if parser.tok.kind == "eof":
            return items
        parser.expect("comma")


def parse_select(text: str, entity: Entity, option: str = "$select", base: int = 0) -> list[str]:
    names: list[str] = []
    i = 0
    while True:
        i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
        m = _NAME.match(text, i)
        if m is None:
            raise _unexpected(text, i, option, base, "a property name")
        name = "id" if m.group(0) == "@iot.id" else m.group(0)
        if entity.prop(name) is None and entity.nav(name) is None:
            raise QueryError(option, base + i, f"unknown property {name!r} of {entity.name}")
        if name not in names:
            names.append(name)
        i = _SPACE.match(text, m.end()).end()  # type: ignore[union-attr]
        if i >= len(text):
            return names
        if text[i] != ",":
            raise _unexpected(text, i, option, base, "','")
        i += 1


def _unexpected(text: str, i: int, option: str, base: int, wanted: str) -> QueryError:
    if i >= len(text):
        return QueryError(option, base + i, f"unexpected end of input, expected {wanted}")
    return QueryError(option, base + i, f"expected {wanted}, found {text[i]!r}")


def _closing(text: str, start: int, option: str, base: int) -> int:
    """The index of the ``)`` matching the ``(`` at ``start`` (quotes respected)."""
    depth, quoted = 0, False
    for j in range(start, len(text)):
        ch = text[j]
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j
    raise QueryError(option, base + start, "unbalanced parenthesis")


def _split(text: str, start: int, end: int, sep: str) -> list[tuple[int, int]]:
    """(start, end) spans of ``text[start:end]`` split at ``sep`` outside quotes and parentheses."""
    spans, depth, quoted, begin = [], 0, False, start
    for j in range(start, end):
        ch = text[j]
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            spans.append((begin, j))
            begin = j + 1
    spans.append((begin, end))
    return spans


def parse_expand(text: str, entity: Entity, max_top: int = 10_000, option: str = "$expand",
                 base: int = 0) -> list[Expand]:
    items: list[Expand] = []
    i = 0
    while True:
        i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
        path: list[str] = []
        current = entity
        while True:
            m = _NAME.match(text, i)
            if m is None:
                raise _unexpected(text, i, option, base, "a navigation property")
            nav = current.nav(m.group(0))
            if nav is None:
                raise QueryError(option, base + i, f"unknown navigation property {m.group(0)!r} of {current.name}")
            path.append(nav.name)
            current = ENTITIES[nav.target]
            i = m.end()
            if i < len(text) and text[i] == "/":
                i += 1
                continue
            break
        query = Query()
        i = _SPACE.match(text, i).end()  # type: ignore[union-attr]
        if i < len(text) and text[i] == "(":
            close = _closing(text, i, option, base)
            query = _nested(text, i + 1, close, current, max_top, option, base)
            i = _SPACE.match(text, close + 1).end()  # type: ignore[union-attr]
        items.append(Expand(path, query))
        if i >= len(text):
            return items
        if text[i] != ",":
            raise _unexpected(text, i, option, base, "',' or '('")
        i += 1


def _nested(text: str, start: int, end: int, entity: Entity, max_top: int, option: str, base: int) -> Query:
    options: dict[str, tuple[str, int]] = {}
    for s, e in _split(text, start, end, ";"):
        s = _SPACE.match(text, s).end()  # type: ignore[union-attr]
        name, eq, _ = text[s:e].partition("=")
        name = name.strip()
        if not eq:
            raise QueryError(option, base + s, f"expected an option like $top=1, found {text[s:e][:20]!r}")
        if name not in NESTED_OPTIONS:
            raise QueryError(option, base + s, f"unknown query option {name!r}")
        if name in options:
            raise QueryError(option, base + s, f"repeated query option {name!r}")
        value_start = text.index("=", s) + 1
        options[name] = (text[value_start:e], base + value_start)
    return _build(options, entity, max_top, option)
