"""A recursive-descent parser for ``$filter`` and ``$orderby`` expressions.

Precedence, loosest first (OData 4.0 part 2, section 5.1.1): ``or``; ``and``; ``not`` (its operand is an
equality, so ``not a eq 1 and b eq 2`` is ``(not (a eq 1)) and (b eq 2)``); ``eq ne``; ``gt ge lt le``;
``add sub``; ``mul div mod``; unary ``-``; then literals, parentheses, function calls and property paths.
Binary operators are left-associative. Operator words are matched case-insensitively.

Property paths are checked against the data model as they are parsed: navigation steps, then a property of
the entity reached, then (for ``json`` properties and ``result``) a JSON sub-path whose all-digit segments are
array indexes.
"""

from __future__ import annotations

from typing import Any

from citydata.sensorthings.model import ENTITIES, Entity
from citydata.sensorthings.query.ast import Binary, BinaryOp, Call, Expr, Literal, Path, QueryError, Unary
from citydata.sensorthings.query.lexer import Token, tokenize

# function name -> (min args, max args)
FUNCTIONS: dict[str, tuple[int, int]] = {
    "substringof": (2, 2), "contains": (2, 2), "endswith": (2, 2), "startswith": (2, 2), "length": (1, 1),
    "indexof": (2, 2), "substring": (2, 3), "tolower": (1, 1), "toupper": (1, 1), "trim": (1, 1),
    "concat": (2, 2),
    "year": (1, 1), "month": (1, 1), "day": (1, 1), "hour": (1, 1), "minute": (1, 1), "second": (1, 1),
    "fractionalseconds": (1, 1), "date": (1, 1), "time": (1, 1), "totaloffsetminutes": (1, 1), "now": (0, 0),
    "mindatetime": (0, 1), "maxdatetime": (0, 1),
    "round": (1, 1), "floor": (1, 1), "ceiling": (1, 1),
    "geo.distance": (2, 2), "geo.length": (1, 1), "geo.intersects": (2, 2),
    "st_equals": (2, 2), "st_disjoint": (2, 2), "st_touches": (2, 2), "st_within": (2, 2),
    "st_overlaps": (2, 2), "st_crosses": (2, 2), "st_intersects": (2, 2), "st_contains": (2, 2),
    "st_relate": (3, 3),
}
_LEVELS: list[frozenset[str]] = [
    frozenset({"or"}), frozenset({"and"}), frozenset({"eq", "ne"}), frozenset({"gt", "ge", "lt", "le"}),
    frozenset({"add", "sub"}), frozenset({"mul", "div", "mod"}),
]
_NOT_LEVEL = 2      # the operand of ``not`` is an equality
MAX_DEPTH = 100


def resolve_path(segments: list[Token], entity: Entity, option: str) -> Path:
    """Check a ``/``-separated path against the model; a QueryError names the first segment that is wrong."""
    navs: list[str] = []
    current = entity
    for i, seg in enumerate(segments):
        name = str(seg.value)
        nav = current.nav(name)
        if nav is not None:
            navs.append(name)
            current = ENTITIES[nav.target]
            continue
        prop = current.prop("id" if name == "@iot.id" else name)
        if prop is None:
            raise QueryError(option, seg.pos, f"unknown property {name!r} of {current.name}")
        rest = segments[i + 1:]
        if rest and prop.kind not in ("json", "result"):
            raise QueryError(option, rest[0].pos, f"property {prop.name!r} has no sub-properties")
        json_path = tuple(int(t.value) if isinstance(t.value, int) or str(t.value).isdigit() else str(t.value)
                          for t in rest)
        return Path(tuple(navs), prop.name, json_path, segments[0].pos)
    last = segments[-1]
    raise QueryError(option, last.pos, f"navigation {last.value!r} needs a property after it")


class Parser:
    def __init__(self, text: str, entity: Entity, option: str = "$filter", base: int = 0) -> None:
        self.tokens = tokenize(text, option, base)
        self.i = 0
        self.entity = entity
        self.option = option
        self.depth = 0

    # -- token helpers ---------------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def error(self, tok: Token, detail: str | None = None) -> QueryError:
        if detail is None:
            detail = "unexpected end of input" if tok.kind == "eof" else f"unexpected token {tok.text!r}"
        return QueryError(self.option, tok.pos, detail)

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(self.tok, None if self.tok.kind == "eof" else
                             f"expected {_KIND_TEXT.get(kind, kind)}, found {self.tok.text!r}")
        return self.advance()

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and str(self.tok.value).lower() in words

    # -- grammar ---------------------------------------------------------------------------------------------
    def parse_all(self) -> Expr:
        if self.tok.kind == "eof":
            raise self.error(self.tok, "empty expression")
        expr = self.expression()
        if self.tok.kind != "eof":
            raise self.error(self.tok)
        return expr

    def expression(self, level: int = 0) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(self.tok, "expression nested too deeply")
        try:
            if level >= len(_LEVELS):
                return self.unary()
            if level == _NOT_LEVEL and self.is_word("not"):
                tok = self.advance()
                return Unary("not", self.expression(_NOT_LEVEL), tok.pos)
            left = self.expression(level + 1)
            while self.tok.kind == "word" and str(self.tok.value).lower() in _LEVELS[level]:
                op_tok = self.advance()
                op: BinaryOp = str(op_tok.value).lower()  # type: ignore[assignment]
                right = self.expression(level + 1)
                left = Binary(op, left, right, op_tok.pos)
            return left
        finally:
            self.depth -= 1

    def unary(self) -> Expr:
        if self.tok.kind == "minus":
            tok = self.advance()
            return Unary("neg", self.unary(), tok.pos)
        if self.is_word("not"):
            tok = self.advance()
            return Unary("not", self.expression(_NOT_LEVEL), tok.pos)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind in ("string", "number", "datetime", "date", "time", "geo"):
            self.advance()
            kind: Any = "datetime" if tok.kind == "datetime" else tok.kind
            return Literal(tok.value, kind, tok.pos)
        if tok.kind == "lparen":
            self.advance()
            inner = self.expression()
            self.expect("rparen")
            return inner
        if tok.kind != "word":
            raise self.error(tok)
        word = str(tok.value)
        lower = word.lower()
        if lower in ("true", "false"):
            self.advance()
            return Literal(lower == "true", "bool", tok.pos)
        if lower == "null":
            self.advance()
            return Literal(None, "null", tok.pos)
        if self.tokens[self.i + 1].kind == "lparen":
            return self.call()
        return self.path()

    def call(self) -> Call:
        tok = self.advance()
        name = str(tok.value).lower()
        if name not in FUNCTIONS:
            raise self.error(tok, f"unknown function {tok.value!r}")
        self.expect("lparen")
        args: list[Expr] = []
        if self.tok.kind != "rparen":
            args.append(self.expression())
            while self.tok.kind == "comma":
                self.advance()
                args.append(self.expression())
        close = self.expect("rparen")
        low, high = FUNCTIONS[name]
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise QueryError(self.option, close.pos if len(args) < low else tok.pos,
                             f"{name} takes {want} argument{'s' if high != 1 else ''}, got {len(args)}")
        return Call(name, tuple(args), tok.pos)

    def path(self) -> Path:
        segments = [self.advance()]
        while self.tok.kind == "slash":
            self.advance()
            if self.tok.kind == "word" or (self.tok.kind == "number" and isinstance(self.tok.value, int)
                                           and self.tok.value >= 0):
                segments.append(self.advance())
            else:
                raise self.error(self.tok, None if self.tok.kind == "eof" else
                                 f"expected a property name, found {self.tok.text!r}")
        return resolve_path(segments, self.entity, self.option)


_KIND_TEXT = {"rparen": "')'", "lparen": "'('", "comma": "','"}


def parse_filter(text: str, entity: Entity, *, option: str = "$filter", base: int = 0) -> Expr:
    """The AST of a ``$filter`` expression on ``entity``; a QueryError (with the position) when it is wrong."""
    return Parser(text, entity, option, base).parse_all()
