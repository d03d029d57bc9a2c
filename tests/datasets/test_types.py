"""Column typing: parsing (Thai conventions) and inference."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from citydata.datasets import types as T
from citydata.datasets.geojoin import norm


def test_parse_thai_conventions() -> None:
    assert T.parse("1,234", "integer") == 1234 and T.parse("1,234.5", "number") == 1234.5
    assert T.parse("31/01/2567", "date") == date(2024, 1, 31)            # Buddhist era
    assert T.parse("2567-01", "date") == date(2024, 1, 1)
    assert T.parse("2024-01-31 08:00", "datetime") == datetime(2024, 1, 31, 1, 0, tzinfo=UTC)   # +07:00
    assert T.parse("ใช่", "boolean") is True and T.parse("no", "boolean") is False
    assert T.parse("", "integer") is None and T.parse("-", "number") is None
    for value, type_ in (("12o", "integer"), ("1.5", "integer"), ("31/02/2567", "date"), ("maybe", "boolean"),
                         ("1,23", "integer")):
        with pytest.raises(T.BadValue):
            T.parse(value, type_)


def test_inference_tolerates_a_few_bad_values_and_samples_big_columns() -> None:
    assert T.infer(["1", "2", "3"]) == "integer"
    assert T.infer(["1", "2.5"]) == "number"
    assert T.infer(["2024-01-01", "31/12/2566"]) == "date"
    assert T.infer(["a", "1"]) == "text"
    big = [str(i) for i in range(50_000)]
    for i in range(0, 50_000, 5_000):
        big[i] = "n/a?"                         # 10 typos in 50,000 values: still integer (they get rejected)
    assert T.infer(big) == "integer"
    assert T.infer(["x"] * 20_000 + ["1"] * 30_000) == "text"


def test_name_normalisation() -> None:
    assert norm("ต.ป่าตอง") == norm("ตำบลป่าตอง") == norm("ป่าตอง")
    assert norm("Tambon Pa Tong") == norm("Patong") == norm("pa-tong")
    assert norm("Koh Kaew") == norm("Ko Kaeo")
