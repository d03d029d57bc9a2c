"""Every error leaves as ``application/problem+json`` with a machine ``code``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from citydata.errors import CityDataError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=int(body["status"]), media_type=PROBLEM, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def citydata_problem(err: CityDataError, path: str) -> Response:
    """The answer to a platform error: its problem document, Retry-After on 429/503, the auth challenge on 401."""
    headers: dict[str, str] = {}
    retry = err.extra.get("retry_after")
    if retry is not None:
        headers["Retry-After"] = str(int(retry))
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="citydata", Basic realm="citydata"'
    return problem_response(err.problem(path), headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CityDataError)
    async def _citydata(request: Request, err: CityDataError) -> Response:
        return citydata_problem(err, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> Response:
        errors = [{"field": _loc(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
                  for e in err.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return problem_response({
            "type": "https://citydata.dev/problems/invalid", "title": "Invalid request", "status": 400,
            "detail": f"{first['field']}: {first['message']}", "code": "invalid", "errors": errors,
            "instance": request.url.path})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                 413: "too_large", 415: "unsupported_media_type"}
        return problem_response({
            "type": f"https://citydata.dev/problems/{codes.get(err.status_code, 'http_error')}",
            "title": str(err.detail) if err.status_code != 404 else "Not found", "status": err.status_code,
            "detail": str(err.detail), "code": codes.get(err.status_code, "http_error"),
            "instance": request.url.path}, dict(err.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error_problem(request.url.path)


def internal_error_problem(path: str) -> Response:
    """The 500 answer to an unexpected error (the error itself is logged, never shown)."""
    return problem_response({
        "type": "https://citydata.dev/problems/internal_error", "title": "Internal error", "status": 500,
        "detail": "an unexpected error occurred; it has been logged", "code": "internal_error",
        "instance": path})


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem", "type": "object", "description": "An RFC 9457 problem document with a machine `code`.",
    "required": ["type", "title", "status", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "code": {"type": "string"}, "instance": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object"}}},
    "additionalProperties": True,
}

CKAN_ERROR_SCHEMA: dict[str, Any] = {"type": "object", "required": ["success", "error"],
                                     "properties": {"success": {"type": "boolean"}, "error": {"type": "object"},
                                                    "help": {"type": "string"}}}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above do: errors are ``application/problem+json``
    (a ``default`` response on every operation, with ``Retry-After`` on 429 and 503), and a request that fails
    validation is a 400 problem, not FastAPI's 422 ``HTTPValidationError`` (which is never sent)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        ref = {"$ref": "#/components/schemas/Problem"}
        for path, operations in schema.get("paths", {}).items():
            # the CKAN-compatible action API answers errors in CKAN's own envelope (success: false, error)
            ckan = path.startswith("/api/3/")
            error = {"description": "An error in CKAN's envelope (`success: false`, `error`).",
                     "content": {"application/json": {"schema": CKAN_ERROR_SCHEMA}}} if ckan else {
                "description": "An error: a problem document. 429 and 503 carry `Retry-After` (seconds).",
                "content": {PROBLEM: {"schema": ref}}}
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                invalid = responses.pop("422", None)
                if invalid is not None and not ckan:
                    responses.setdefault("400", {"description": "Invalid request (field and message in `errors`)",
                                                 "content": {PROBLEM: {"schema": ref}}})
                responses.setdefault("default", error)
        for name in ("HTTPValidationError", "ValidationError"):
            if not _referenced(schema, f"#/components/schemas/{name}"):
                components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _referenced(schema: dict[str, Any], ref: str) -> bool:
    needle = orjson.dumps(ref)
    return needle in orjson.dumps({k: v for k, v in schema.items() if k != "components"}) or any(
        needle in orjson.dumps(v) for k, v in schema.get("components", {}).get("schemas", {}).items()
        if k not in ("HTTPValidationError", "ValidationError"))
