"""Anonymisation of open-data rows, and the scanner the tests run over every published output.

``anonymise(rows, dataset, k)``: only the declared fields leave (an allow-list); counts of people under k are
suppressed (set to null, never rounded to a hint); timestamps are generalised to the hour. The scanner looks
for personal fields and for values that look personal (MAC addresses, e-mail addresses, Thai ID numbers,
phone numbers, passport numbers) and for count cells in 1..k-1."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from citydata.opendata.catalogue import PERSONAL_FIELDS, OpenDataset

PATTERNS = {
    "mac": re.compile(r"\b[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\b"),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "thai_id": re.compile(r"\b\d{1}-?\d{4}-?\d{5}-?\d{2}-?\d{1}\b"),
    "phone": re.compile(r"(?:\+66|\b0)[689]\d{8}\b|\b0\d-\d{3}-\d{4}\b"),
    "passport": re.compile(r"\b[A-Z]{1,2}\d{7,8}\b"),
}


def anonymise(rows: list[dict[str, Any]], dataset: OpenDataset, k: int) -> tuple[list[dict[str, Any]], int]:
    """(published rows, suppressed cells)."""
    suppressed = 0
    out = []
    for row in rows:
        clean: dict[str, Any] = {}
        for f in dataset.fields:
            value = row.get(f.id)
            if f.count and value is not None and 0 < float(value) < k:
                value = None
                suppressed += 1
            elif f.type == "timestamp" and isinstance(value, datetime):
                value = value.replace(minute=0, second=0, microsecond=0).isoformat()
            elif f.type == "int" and isinstance(value, float) and value.is_integer():
                value = int(value)
            clean[f.id] = value
        out.append(clean)
    return out, suppressed


def scan(records: list[dict[str, Any]], dataset: OpenDataset, k: int) -> list[str]:
    """Every privacy problem in published records (empty when clean)."""
    problems = []
    declared = {f.id for f in dataset.fields} | {"_id"}
    counts = {f.id for f in dataset.fields if f.count}
    for i, rec in enumerate(records):
        for key, value in rec.items():
            if key.lower() in PERSONAL_FIELDS:
                problems.append(f"record {i}: personal field {key}")
            if key not in declared:
                problems.append(f"record {i}: undeclared field {key}")
            if key in counts and value is not None and 0 < float(value) < k:
                problems.append(f"record {i}: {key}={value} is a cell under k={k}")
            if isinstance(value, str):
                for kind, pattern in PATTERNS.items():
                    if pattern.search(value):
                        problems.append(f"record {i}: {key} looks like a {kind}: {value[:40]!r}")
    return problems
