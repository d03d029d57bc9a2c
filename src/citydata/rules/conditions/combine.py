"""``all`` and ``any``: combinations of conditions (every child is evaluated, so each keeps its hysteresis).

    all:
      - aggregate: {function: sum, window: 1h, above: 35}
      - rate_of_change: {window: 30m, rise: 0.3}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from citydata.rules.conditions.base import BindContext, Condition, parse_condition
from citydata.rules.spec import Reader, RuleInvalid, join


class _Combination(Condition):
    leaf = False

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.children: list[Condition] = []

    @classmethod
    def from_body(cls, body: Any, path: str) -> Condition:
        if not isinstance(body, list) or not body:
            raise RuleInvalid(path, "must be a non-empty list of conditions")
        combo = cls(path)
        combo.children = [parse_condition(item, join(path, i)) for i, item in enumerate(body)]
        return combo

    def configure(self, spec: Reader) -> None:  # pragma: no cover - combinations are lists
        raise NotImplementedError

    def bind(self, ctx: BindContext) -> None:
        for child in self.children:
            child.bind(ctx)

    def leaves(self) -> Iterator[Condition]:
        for child in self.children:
            yield from child.leaves()


class All(_Combination):
    kind = "all"

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        results = [child.evaluate(states, now) for child in self.children]
        return all(results)


class Any_(_Combination):
    kind = "any"

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        results = [child.evaluate(states, now) for child in self.children]
        return any(results)
