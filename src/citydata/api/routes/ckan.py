"""The CKAN-compatible action API at ``/api/3/action/{action}`` (and ``/api/action/{action}``, the path the
ckanapi client uses), GET with query parameters or POST with a JSON or form body. Answers use CKAN's envelope
``{"help", "success", "result"}``; errors ``{"help", "success": false, "error": {...}}`` with CKAN's status
codes (400 unknown action, 403 authorization, 404 not found, 409 validation, 429 rate limit)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from citydata.api.deps import PlatformDep
from citydata.api.routes.opendata import CkanCaller, base_url, service_of
from citydata.opendata.ckan import CkanError, call

router = APIRouter(tags=["ckan"])


def _envelope(request: Request, action: str, status: int, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> Response:
    help_url = f"{str(request.base_url).rstrip('/')}/api/3/action/help_show?name={action}"
    return Response(orjson.dumps({"help": help_url, **body}), status_code=status,
                    media_type="application/json;charset=utf-8", headers=headers)


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        if raw.strip():
            if "form" in ctype:
                form = await request.form()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
            else:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as err:
                    raise CkanError(400, {"__type": "Bad request", "message": "Bad request - JSON Error: "
                                                                             f"{err}"}) from err
                if not isinstance(body, dict):
                    raise CkanError(400, {"__type": "Bad request",
                                          "message": "Bad request - Request data must be a JSON object"})
                params.update(body)
    return params


async def _action(action: str, request: Request, platform: PlatformDep, caller: CkanCaller) -> Response:
    if caller.error is not None:
        err = caller.error
        kind = {401: "Authorization Error", 403: "Authorization Error", 429: "Rate Limit Error"}.get(
            err.status, "Error")
        headers = {"Retry-After": str(int(err.extra["retry_after"]))} if "retry_after" in err.extra else None
        return _envelope(request, action, err.status, {"success": False, "error": {"__type": kind,
                                                                               "message": err.message}}, headers)
    try:
        result = await call(service_of(platform), action, await _params(request), base_url(request, platform))
    except CkanError as err:
        return _envelope(request, action, err.status, {"success": False, "error": err.error}, caller.headers)
    return _envelope(request, action, 200, {"success": True, "result": result}, caller.headers)


for _prefix in ("/api/3/action", "/api/action"):
    for _method in ("GET", "POST"):
        router.add_api_route(f"{_prefix}/{{action}}", _action, methods=[_method],
                             name=f"ckan_action_{_method.lower()}{'' if '3' in _prefix else '_unversioned'}",
                             summary="CKAN action API (package_list, package_show, package_search, "
                                     "organization_list, organization_show, resource_show, datastore_search, "
                                     "help_show, status_show)",
                             include_in_schema=_prefix == "/api/3/action")
