"""One error hierarchy. Each error carries an HTTP status, a machine code and a message that is safe to show.

The API turns every ``CityDataError`` into ``application/problem+json``; the CLI prints its message on one line
and exits non-zero. Third-party errors are wrapped at the boundary with ``raise ... from err``.
"""

from __future__ import annotations

from typing import Any


class CityDataError(Exception):
    """Base of every error the platform raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": f"https://citydata.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.message,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ConfigError(CityDataError):
    status, code, title = 500, "config_invalid", "Invalid configuration"


class ValidationFailed(CityDataError):
    status, code, title = 400, "invalid", "Invalid request"


class NotFound(CityDataError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(CityDataError):
    status, code, title = 409, "conflict", "Conflict"


class Unauthorized(CityDataError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(CityDataError):
    status, code, title = 403, "forbidden", "Forbidden"


class TooManyRequests(CityDataError):
    status, code, title = 429, "rate_limited", "Too many requests"


class Unavailable(CityDataError):
    status, code, title = 503, "unavailable", "Service unavailable"


class PortInUse(CityDataError):
    status, code, title = 500, "port_in_use", "Port in use"
