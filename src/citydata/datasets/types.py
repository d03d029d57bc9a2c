"""Column types of imported datasets: parsing, and inference from the values.

Types: ``integer``, ``number``, ``boolean``, ``date``, ``datetime``, ``text``. Numbers accept thousands
separators (``1,234``); dates and datetimes accept ISO 8601 and ``DD/MM/YYYY``, and Buddhist-era years (Thai
government files: 2567 = 2024) are converted. Datetimes without an offset get the dataset's offset (default
+07:00, Thailand). A column's inferred type is the most specific one that parses at least ``INFER_SHARE`` of its
non-empty values; the values that do not parse are then rejected rows (a typo in a number column is reported,
it does not turn the column into text).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

TYPES = ("integer", "number", "boolean", "date", "datetime", "text")
INFER_SHARE = 0.9
BUDDHIST_OFFSET = 543
TRUE = {"true", "yes", "y", "1", "t", "ใช่", "มี"}
FALSE = {"false", "no", "n", "0", "f", "ไม่ใช่", "ไม่มี"}
_INT = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$|^[+-]?\d+$")
_NUM = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][+-]?\d+)?$")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
ICT = timezone(timedelta(hours=7))


class BadValue(ValueError):
    """A value that does not parse as its column's type (the message is the rejection reason)."""


def _year(y: int) -> int:
    return y - BUDDHIST_OFFSET if y > 2400 else y


def parse_date(text: str) -> date:
    m = _DMY.match(text)
    if m:
        d, mo, y = (int(g) for g in m.groups())
        return date(_year(y), mo, d)
    if len(text) == 7 and text[4] == "-":            # YYYY-MM (monthly statistics)
        return date(_year(int(text[:4])), int(text[5:]), 1)
    y = int(text[:4])
    return date.fromisoformat(f"{_year(y):04d}{text[4:10]}") if len(text) == 10 else date.fromisoformat(text)


def parse_datetime(text: str, tz: timezone = ICT) -> datetime:
    value = text.strip().replace(" ", "T", 1)
    y = int(value[:4])
    value = f"{_year(y):04d}{value[4:]}".replace("Z", "+00:00")
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(UTC)


def parse(value: Any, type_: str, tz: timezone = ICT) -> Any:
    """``value`` as ``type_`` (None for empty); raises ``BadValue`` with a reason."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "" or value in ("-", "N/A", "n/a", "NA"):
            return None
    try:
        if type_ == "text":
            return str(value)
        if type_ == "integer":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, (int, float)):
                if float(value) != int(value):
                    raise ValueError
                return int(value)
            if not _INT.match(value):
                raise ValueError
            return int(value.replace(",", ""))
        if type_ == "number":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, (int, float)):
                return float(value)
            if not _NUM.match(value) or value in ("", "+", "-", "."):
                raise ValueError
            return float(value.replace(",", ""))
        if type_ == "boolean":
            if isinstance(value, bool):
                return value
            low = str(value).lower()
            if low in TRUE:
                return True
            if low in FALSE:
                return False
            raise ValueError
        if type_ == "date":
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            return parse_date(str(value))
        if type_ == "datetime":
            if isinstance(value, datetime):
                return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
            return parse_datetime(str(value), tz)
    except (ValueError, TypeError, OverflowError) as err:
        raise BadValue(f"{str(value)[:60]!r} is not a valid {type_}") from err
    raise BadValue(f"unknown column type {type_!r}")


INFER_SAMPLE = 5000


def infer(values: list[Any]) -> str:
    """The most specific type parsing at least ``INFER_SHARE`` of the non-empty values (``text`` otherwise).

    Judged on at most ``INFER_SAMPLE`` values spread evenly over the column (every value is still parsed, and
    rejected when it does not fit, during the import)."""
    present = [v for v in values if v is not None and not (isinstance(v, str) and v.strip() == "")]
    if not present:
        return "text"
    if len(present) > INFER_SAMPLE:
        step = len(present) / INFER_SAMPLE
        present = [present[int(i * step)] for i in range(INFER_SAMPLE)]
    allowed = (1.0 - INFER_SHARE) * len(present)
    for type_ in ("integer", "number", "boolean", "date", "datetime"):
        failed = 0
        for v in present:
            try:
                parse(v, type_)
            except BadValue:
                failed += 1
                if failed > allowed:
                    break
        if failed <= allowed:
            return type_
    return "text"


def to_json(value: Any) -> Any:
    """A typed value as stored in JSON (dates and datetimes as ISO 8601 strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
