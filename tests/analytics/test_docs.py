"""docs/analytics.md documents every registered query as defined (description and parameters)."""

from __future__ import annotations

from citydata.analytics import get_query
from citydata.analytics.model import QUERIES
from tests.conftest import REPO


def test_every_query_is_documented() -> None:
    get_query("tourism_density")
    doc = (REPO / "docs" / "analytics.md").read_text(encoding="utf-8")
    for q in QUERIES.values():
        assert f"### `{q.name}`: {q.title}" in doc, q.name
        assert q.description in doc, f"{q.name}: description differs from docs/analytics.md"
        for p in q.params:
            assert f"| `{p.name}` | {p.type} |" in doc, (q.name, p.name)
