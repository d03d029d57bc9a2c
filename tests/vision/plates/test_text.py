"""Plate text: normalisation, patterns, the confusable-tolerant distance, province matching and consensus."""

from __future__ import annotations

import json

import pytest

from citydata.vision.plates import (
    PROVINCES,
    PlateRead,
    confusable,
    consensus,
    is_latin_registration,
    is_thai_registration,
    match_province,
    normalise_plate,
    plate_distance,
)
from tests.conftest import REPO


@pytest.mark.parametrize(("raw", "want"), [
    ("กข 1234", "กข1234"),
    (" 1กข-234 ", "1กข234"),
    ("กข ๑๒๓๔", "กข1234"),  # Thai digits
    ("rk-755 aj", "RK755AJ"),
    ("RK 755.AJ", "RK755AJ"),
    ("กข 1234 ภูเก็ต", "กข1234ภกต"),  # vowels and tone marks dropped: the province belongs in its own field
    ("", ""),
])
def test_normalise(raw: str, want: str) -> None:
    assert normalise_plate(raw) == want


def test_patterns() -> None:
    for ok in ("กข1234", "1กข234", "ก1", "ขก9999", "9ฮฮ1"):
        assert is_thai_registration(ok), ok
    for bad in ("กข01234", "กขค123", "กข", "1234", "0กข12", "กข0123", "RK755AJ"):
        assert not is_thai_registration(bad), bad
    assert is_latin_registration("RK755AJ") and is_latin_registration("M5XSX")
    assert not is_latin_registration("DAEWOO") and not is_latin_registration("2011") and not is_latin_registration("A1")


def test_distance_tolerates_lookalikes_only() -> None:
    assert plate_distance("กข 1234", "กข1234") == 0
    assert plate_distance("ฌข1234", "ณข1234") == 0  # ฌ/ณ
    assert plate_distance("ฬก55", "พก55") == 0  # ฬ/พ
    assert plate_distance("ฏก55", "ฎก55") == 0  # ฏ/ฎ
    assert plate_distance("RKO99AN", "RK099AN") == 0  # O/0
    assert plate_distance("8B1", "B81") == 0
    assert plate_distance("กข1234", "กค1234") == 1  # ข/ค are not look-alikes
    assert plate_distance("กข1234", "กข123") == 1
    assert plate_distance("กข1234", "ขก4321") > 1
    assert confusable("ฌ", "ณ") and confusable("ณ", "ฌ") and not confusable("ก", "ข")


def test_province_list_matches_geography() -> None:
    path = REPO / "src" / "citydata" / "geo" / "data" / "phuket" / "thailand_provinces.geojson"
    names = {f["properties"]["pro_th"] for f in json.loads(path.read_text(encoding="utf-8"))["features"]}
    assert len(PROVINCES) == 77 == len(set(PROVINCES))
    assert set(PROVINCES) == names


@pytest.mark.parametrize(("reading", "want"), [
    ("ภูเก็ต", "ภูเก็ต"),
    ("ภูเกต", "ภูเก็ต"),  # a lost mark
    ("กรุงเทพมหานค", "กรุงเทพมหานคร"),
    ("  สุราษฎร์ธานี\n", "สุราษฎร์ธานี"),
    ("RK755AJ", None),
    ("", None),
    ("ฮฮฮฮฮฮฮฮ", None),
])
def test_match_province(reading: str, want: str | None) -> None:
    assert match_province(reading) == want


def _r(text: str, conf: float, province: str | None = "ภูเก็ต") -> PlateRead:
    return PlateRead(bbox=(0, 0, 10, 5), text=text, province=province, confidence=conf)


def test_consensus_votes() -> None:
    assert consensus([]) is None
    assert consensus([_r("", 0.9)]) is None
    got = consensus([_r("กข1234", 0.9), _r("ฌข1234", 0.6), _r("กข1234", 0.8), _r("ขข99", 0.95, "ตรัง")])
    assert got is not None
    assert got.text == "กข1234" and got.province == "ภูเก็ต"
    assert 0 < got.confidence < 1
    # the same three agreeing frames give a higher confidence than with a disagreeing one
    agree = consensus([_r("กข1234", 0.9), _r("กข1234", 0.8)])
    assert agree is not None and agree.confidence > got.confidence
    # position-wise vote inside a look-alike group: ณ wins over ฌ by weight
    looks = consensus([_r("ณก1", 0.5), _r("ณก1", 0.5), _r("ฌก1", 0.9)])
    assert looks is not None and looks.text == "ณก1"
    # the province comes from the reads that have one
    prov = consensus([_r("กข1", 0.9, None), _r("กข1", 0.4, "ตรัง")])
    assert prov is not None and prov.province == "ตรัง"
