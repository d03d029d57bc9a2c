"""Reading rule documents with the path of every field, so a bad field is refused with where it is.

``Reader`` wraps one mapping of a rule document and knows its path (``condition.all[1]``); every accessor
checks the type and raises ``RuleInvalid("condition.all[1].window: must be a duration like 30m")``.
``done()`` refuses fields nobody read (typos). Durations are ``90s``, ``30m``, ``1h``, ``24h``, ``2d`` or a
number of seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from citydata.errors import ValidationFailed

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class RuleInvalid(ValidationFailed):
    """A rule document was refused; ``path`` names the bad field."""

    code = "rule_invalid"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message, path=path)
        self.path = path


def parse_duration(value: Any, path: str) -> float:
    """Seconds in ``value`` (``30m``, ``1h``, ``24h``, ``2d``, ``45s`` or a number of seconds)."""
    if isinstance(value, bool):
        raise RuleInvalid(path, "must be a duration like 30m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise RuleInvalid(path, "must be a duration like 30m")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:   # NaN and infinity (YAML .nan, .inf) are no durations
        raise RuleInvalid(path, "must be a positive duration like 30m")
    return seconds


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """Typed, path-aware access to one mapping of a rule document."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise RuleInvalid(path, "must be a mapping")
        self.data: Mapping[str, Any] = data
        self.path = path
        self._used: set[str] = set()

    def at(self, key: str | int) -> str:
        return join(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self._used.add(key)
        value = self.data.get(key)
        return default if value is None else value

    def text(self, key: str, default: str | None = None, *, required: bool = False,
             max_len: int = 2000, pattern: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise RuleInvalid(self.at(key), "is required")
            return default
        if not isinstance(value, str):
            raise RuleInvalid(self.at(key), "must be a string")
        if len(value) > max_len:
            raise RuleInvalid(self.at(key), f"must be at most {max_len} characters")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise RuleInvalid(self.at(key), f"must match {pattern}")
        return value

    def req_text(self, key: str, **kwargs: Any) -> str:
        value = self.text(key, required=True, **kwargs)
        assert value is not None
        return value

    def number(self, key: str, default: float | None = None, *, required: bool = False,
               minimum: float | None = None) -> float | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise RuleInvalid(self.at(key), "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleInvalid(self.at(key), "must be a number")
        if minimum is not None and value < minimum:
            raise RuleInvalid(self.at(key), f"must be at least {minimum:g}")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleInvalid(self.at(key), "must be an integer")
        if value < minimum or (maximum is not None and value > maximum):
            raise RuleInvalid(self.at(key), f"must be between {minimum} and {maximum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise RuleInvalid(self.at(key), "must be true or false")
        return value

    def duration(self, key: str, default: float | None = None, *, required: bool = False) -> float | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise RuleInvalid(self.at(key), "is required (a duration like 30m)")
            return default
        return parse_duration(value, self.at(key))

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise RuleInvalid(self.at(key), f"is required (one of {', '.join(options)})")
            return default
        if value not in options:
            raise RuleInvalid(self.at(key), f"must be one of {', '.join(options)}")
        return str(value)

    def strings(self, key: str) -> list[str]:
        """A string or a list of strings (an empty list when absent)."""
        value = self.raw(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise RuleInvalid(join(self.at(key), i) if isinstance(value, list) else self.at(key),
                                  "must be a string")
        return [str(item) for item in items]

    def sub(self, key: str) -> Reader | None:
        value = self.raw(key)
        return None if value is None else Reader(value, self.at(key))

    def done(self) -> None:
        """Refuse any field that was not read (a typo, or a field of another condition kind)."""
        for key in self.data:
            if key not in self._used:
                raise RuleInvalid(self.at(str(key)), "unknown field")
