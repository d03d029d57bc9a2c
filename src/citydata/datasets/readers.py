"""File readers: CSV, GeoJSON and Excel, each yielding ``SourceRow(line, values, geometry)``.

``line`` is what a rejection report cites: the physical line of a CSV row (multi-line quoted cells counted),
the sheet row of an Excel row, the 1-based feature number of a GeoJSON feature."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from citydata.errors import ValidationFailed

FORMATS = {".csv": "csv", ".txt": "csv", ".geojson": "geojson", ".json": "geojson", ".xlsx": "xlsx",
           ".xlsm": "xlsx"}


@dataclass
class SourceRow:
    line: int
    values: dict[str, Any]
    geometry: dict[str, Any] | None = None


@dataclass
class Source:
    format: str
    columns: list[str]
    rows: list[SourceRow] = field(default_factory=list)
    raw: bytes = b""                 # the file's bytes (for the version's checksum)


def detect_format(path: Path, declared: str | None = None) -> str:
    if declared:
        if declared not in ("csv", "geojson", "xlsx"):
            raise ValidationFailed(f"unknown format {declared!r} (csv, geojson, xlsx)", code="bad_format")
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationFailed(f"cannot tell the format of {path.name} (use .csv, .geojson or .xlsx, or --format)",
                               code="bad_format")
    return fmt


def read_source(path: Path, fmt: str, *, sheet: str | None = None, delimiter: str | None = None) -> Source:
    """Read the whole file (government datasets are thousands to a few hundred thousand rows)."""
    if fmt == "csv":
        source = _read_csv(path, delimiter)
    elif fmt == "geojson":
        source = _read_geojson(path)
    else:
        source = _read_xlsx(path, sheet)
    source.raw = path.read_bytes()
    return source


def _read_csv(path: Path, delimiter: str | None) -> Source:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp874"):      # cp874 (TIS-620): older Thai government exports
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp874 decodes nearly anything
        raise ValidationFailed(f"{path.name}: not UTF-8 or TIS-620 text", code="bad_encoding")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as err:
        raise ValidationFailed(f"{path.name}: empty file", code="empty_file") from err
    _check_header(path, header)
    rows: list[SourceRow] = []
    start = reader.line_num + 1
    for cells in reader:
        line = start
        start = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        values: dict[str, Any] = dict(zip(header, cells, strict=False))
        if len(cells) != len(header):
            values["__error__"] = f"{len(cells)} cells, the header has {len(header)}"
        rows.append(SourceRow(line, values))
    return Source("csv", header, rows)


def _check_header(path: Path, header: list[str]) -> None:
    if not header or any(not h for h in header):
        raise ValidationFailed(f"{path.name}: the header row has an empty column name", code="bad_header")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ValidationFailed(f"{path.name}: duplicate column names {', '.join(dupes)}", code="bad_header")


def _read_geojson(path: Path) -> Source:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as err:
        raise ValidationFailed(f"{path.name}: not JSON ({err})", code="bad_geojson") from err
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise ValidationFailed(f"{path.name}: not a GeoJSON FeatureCollection", code="bad_geojson")
    columns: list[str] = []
    rows: list[SourceRow] = []
    for i, feat in enumerate(doc["features"], start=1):
        props = feat.get("properties") if isinstance(feat, dict) else None
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        values: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        for key in values:
            if key not in columns:
                columns.append(key)
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            values["__error__"] = "not a GeoJSON Feature"
        rows.append(SourceRow(i, values, geom if isinstance(geom, dict) else None))
    return Source("geojson", columns, rows)


def _read_xlsx(path: Path, sheet: str | None) -> Source:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:   # openpyxl raises zipfile/KeyError/InvalidFileException for bad files
        raise ValidationFailed(f"{path.name}: not a readable Excel workbook ({type(err).__name__})",
                               code="bad_excel") from err
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ValidationFailed(f"{path.name}: no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})",
                                   code="bad_excel")
        ws = book[sheet] if sheet else book.worksheets[0]
        it = ws.iter_rows(values_only=True)
        try:
            header = [str(h).strip() if h is not None else "" for h in next(it)]
        except StopIteration as err:
            raise ValidationFailed(f"{path.name}: empty sheet", code="empty_file") from err
        while header and header[-1] == "":
            header.pop()
        _check_header(path, header)
        rows: list[SourceRow] = []
        for n, cells in enumerate(it, start=2):
            if not any(c is not None and str(c).strip() for c in cells):
                continue
            rows.append(SourceRow(n, dict(zip(header, cells, strict=False))))
        return Source("xlsx", header, rows)
    finally:
        book.close()
