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


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CityDataError)
    async def _citydata(request: Request, err: CityDataError) -> Response:
        headers: dict[str, str] = {}
        retry = err.extra.get("retry_after")
        if retry is not None:
            headers["Retry-After"] = str(int(retry))
        if err.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="citydata", Basic realm="citydata"'
        return problem_response(err.problem(request.url.path), headers)

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
        return problem_response({
            "type": "https://citydata.dev/problems/internal_error", "title": "Internal error", "status": 500,
            "detail": "an unexpected error occurred; it has been logged", "code": "internal_error",
            "instance": request.url.path})
