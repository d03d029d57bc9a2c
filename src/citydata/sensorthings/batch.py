"""Batch requests (18-088 section 11, JSON batch format as in OData JSON batch):

    POST /v1.1/$batch
    {"requests": [{"id": "1", "method": "post", "url": "Things", "body": {...}},
                  {"id": "2", "method": "post", "url": "$1/Datastreams", "body": {...}, "dependsOn": ["1"]},
                  {"id": "3", "method": "get",  "url": "Things?$top=1"}]}

Each request runs through the same service calls as a single request. ``$<id>`` at the start of a URL stands for
the entity created by request ``<id>``. Requests that share an ``atomicityGroup`` (a change set) succeed or fail
together: when one fails, what the others created is deleted again (compensation, in reverse order) and every
request of the group reports the failure.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from citydata.auth import Principal
from citydata.errors import CityDataError, Forbidden, ValidationFailed
from citydata.sensorthings.paths import parse_path

MAX_REQUESTS = 1000
_REF = re.compile(r"^\$([A-Za-z0-9_.-]+)")


def _problem(err: CityDataError) -> dict[str, Any]:
    return {"status": err.status, "body": err.problem()}


async def run_batch(platform: Any, caller: Principal, body: Any, base: str) -> dict[str, Any]:
    from citydata.api.routes.sensorthings import create_path, delete_path, read_path, update_path

    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise ValidationFailed("requests: a JSON batch needs a 'requests' array", code="invalid_batch",
                               field="requests")
    requests = body["requests"]
    if len(requests) > MAX_REQUESTS:
        raise ValidationFailed(f"requests: at most {MAX_REQUESTS} per batch", code="invalid_batch", field="requests")
    created: dict[str, str] = {}            # request id -> entity path, e.g. "Things(5)"
    responses: list[dict[str, Any]] = []
    groups: dict[str, list[int]] = {}       # atomicity group -> response indexes
    undo: dict[str, list[tuple[str, str]]] = {}
    failed_groups: set[str] = set()
    for index, req in enumerate(requests):
        rid = str(req.get("id", index + 1)) if isinstance(req, dict) else str(index + 1)
        group = req.get("atomicityGroup") if isinstance(req, dict) else None
        out: dict[str, Any] = {"id": rid}
        if group is not None:
            out["atomicityGroup"] = group
            groups.setdefault(str(group), []).append(index)
        try:
            if not isinstance(req, dict):
                raise ValidationFailed(f"requests[{index}]: must be an object", code="invalid_batch")
            if group is not None and str(group) in failed_groups:
                raise ValidationFailed("an earlier request of this atomicity group failed", code="batch_aborted")
            method = str(req.get("method", "")).lower()
            url = str(req.get("url", ""))
            for dep in req.get("dependsOn") or []:
                failed = next((r for r in responses if r["id"] == str(dep) and r["status"] >= 400), None)
                if failed is not None:
                    raise ValidationFailed(f"depends on request {dep}, which failed", code="batch_dependency")
            url = _resolve(url, created, base)
            path, _, qs = url.partition("?")
            params = dict(parse_qsl(qs, keep_blank_values=True))
            if method == "get":
                if not caller.can("sensors.read"):
                    raise Forbidden("not allowed to read", code="forbidden")
                status, result, headers = await read_path(platform, path, params, base, f"{base}/{path}")
            else:
                if not caller.can("sensors.write"):
                    raise Forbidden(f"role {caller.role} may not sensors.write", code="forbidden")
                if method == "post":
                    status, result, headers = await create_path(platform, path, _resolve_body(req.get("body"),
                                                                                             created), base)
                    created[rid] = headers["Location"][len(base) + 1:]
                    if group is not None:
                        undo.setdefault(str(group), []).append((rid, created[rid]))
                elif method in ("patch", "put"):
                    status, result, headers = await update_path(platform, path, _resolve_body(req.get("body"),
                                                                                             created), base,
                                                                replace=method == "put")
                elif method == "delete":
                    status, result, headers = await delete_path(platform, path, base)
                else:
                    raise ValidationFailed(f"unsupported method {method!r}", code="invalid_batch")
            out["status"] = status
            if headers:
                out["headers"] = {k.lower(): v for k, v in headers.items()}
            if result is not None:
                out["body"] = result
        except CityDataError as err:
            out.update(_problem(err))
            if group is not None and str(group) not in failed_groups:
                failed_groups.add(str(group))
                await _compensate(platform, undo.get(str(group), []), base)
        responses.append(out)
    for group in failed_groups:   # a failed change set fails as a whole
        first = next(responses[i] for i in groups[group] if responses[i]["status"] >= 400)
        for i in groups[group]:
            if responses[i]["status"] < 400:
                responses[i] = {"id": responses[i]["id"], "atomicityGroup": group, "status": first["status"],
                                "body": first.get("body")}
    return {"responses": responses}


def _resolve(url: str, created: dict[str, str], base: str) -> str:
    if url.startswith(base):
        url = url[len(base):]
    url = url.lstrip("/")
    if url.startswith("v1.1/"):
        url = url[len("v1.1/"):]
    match = _REF.match(url)
    if match:
        ref = match.group(1)
        if ref not in created:
            raise ValidationFailed(f"${ref} does not name an entity created earlier in this batch",
                                   code="batch_reference")
        url = created[ref] + url[match.end():]
    return url


def _resolve_body(body: Any, created: dict[str, str]) -> Any:
    """``{"@iot.id": "$sensor1"}`` links to the entity request ``sensor1`` created."""
    if isinstance(body, list):
        return [_resolve_body(b, created) for b in body]
    if not isinstance(body, dict):
        return body
    out = {k: _resolve_body(v, created) for k, v in body.items()}
    ref = out.get("@iot.id")
    if isinstance(ref, str) and ref.startswith("$"):
        path = created.get(ref[1:])
        if path is None:
            raise ValidationFailed(f"{ref} does not name an entity created earlier in this batch",
                                   code="batch_reference")
        out["@iot.id"] = int(path.rsplit("(", 1)[1].rstrip(")"))
    return out


async def _compensate(platform: Any, made: list[tuple[str, str]], base: str) -> None:
    from citydata.api.routes.sensorthings import delete_path

    for _, path in reversed(made):
        try:
            parse_path(path)
            await delete_path(platform, path, base)
        except CityDataError:
            continue
