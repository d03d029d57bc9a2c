"""OGC SensorThings API v1.1 over HTTP, under ``/v1.1``: thin handlers over ``citydata.sensorthings``.

Reading is public unless ``CITYDATA_READ_PUBLIC=false``; writing needs the ``sensors.write`` permission
(device, operator or admin). Tokens are accepted as Bearer or as the password of HTTP Basic (FROST clients)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.api.hot_routes import HotRoute
from citydata.auth import Principal
from citydata.errors import NotFound, ValidationFailed
from citydata.sensorthings.model import BY_SET, CONFORMANCE
from citydata.sensorthings.paths import parse_path
from citydata.sensorthings.query import parse_query
from citydata.sensorthings.serialize import entity_json, self_link

if TYPE_CHECKING:
    from citydata.app import Platform

router = APIRouter(prefix="/v1.1", tags=["sensorthings"])
JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def base_of(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/v1.1"


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed("the request has no JSON body", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValidationFailed(f"invalid JSON: {err}", code="invalid_json") from err


@router.get("", summary="SensorThings landing page: entity sets and server settings (conformance classes)")
async def landing(request: Request, platform: PlatformDep,
                  caller: Annotated[Principal, Allowed("sensors.read")]) -> Response:
    base = base_of(request)
    settings: dict[str, Any] = {"conformance": list(CONFORMANCE)}
    if platform.mqtt_url:
        endpoint = {"endpoints": [platform.mqtt_url]}
        settings["http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation"] \
            = endpoint
        settings["http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"] = endpoint
    return json_response({"value": [{"name": name, "url": f"{base}/{name}"} for name in BY_SET],
                          "serverSettings": settings})


@router.post("/CreateObservations", summary="Create many Observations in one request (data-array format)",
             status_code=201)
async def create_observations(request: Request, platform: PlatformDep,
                              caller: Annotated[Principal, Allowed("sensors.write")]) -> Response:
    links = await platform.sta.create_data_arrays(await json_body(request), base_url=base_of(request))
    return json_response(links, 201)


@router.post("/$batch", summary="Batch requests (JSON batch format)")
async def batch(request: Request, platform: PlatformDep,
                caller: Annotated[Principal, Allowed("sensors.read")]) -> Response:
    from citydata.sensorthings.batch import run_batch

    body = await json_body(request)
    return json_response(await run_batch(platform, caller, body, base_of(request)))


@router.get("/{path:path}", summary="Read entities, properties, navigation paths and $value")
async def read(path: str, request: Request, platform: PlatformDep,
               caller: Annotated[Principal, Allowed("sensors.read")]) -> Response:
    async with platform.store.read_session():   # the request's queries share one connection
        status, body, headers = await read_path(platform, path, dict(request.query_params), base_of(request),
                                                str(request.url).split("?", 1)[0])
    if isinstance(body, (str, bytes)):
        return Response(body, status_code=status, media_type="text/plain", headers=headers)
    return json_response(body, status, headers)


async def read_path(platform: Any, path: str, params: dict[str, str], base: str, url: str
                    ) -> tuple[int, Any, dict[str, str]]:
    rpath = parse_path(path)
    entity = rpath.target.entity
    query = parse_query(params, entity, max_top=platform.sta.max_top)
    reader = platform.sta.reader(base)
    if rpath.property_name is not None:
        value, _ = await reader.property_value(rpath)
        if rpath.value:
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            return 200, text, {}
        return 200, {rpath.property_name: value}, {}
    if rpath.is_collection:
        page = await reader.collection(rpath, query, url=url, params=params)
        if query.result_format == "dataArray":
            if entity.name != "Observation":
                raise ValidationFailed("$resultFormat=dataArray applies to Observations", code="invalid_query")
            body: dict[str, Any] = platform.sta.data_array(page.rows[:len(page.value)], query.select, base)
        elif rpath.ref:
            body = {"value": [{"@iot.selfLink": v["@iot.selfLink"]} for v in page.value]}
        else:
            body = {"value": page.value}
        out: dict[str, Any] = {}
        if page.count is not None:
            out["@iot.count"] = page.count
        if page.next_link:
            out["@iot.nextLink"] = page.next_link
        out.update(body)
        return 200, out, {}
    one, _ = await reader.entity(rpath, query)
    if rpath.ref:
        return 200, {"@iot.selfLink": one["@iot.selfLink"]}, {}
    return 200, one, {}


@router.post("/{path:path}", summary="Create an entity (deep insert and links by @iot.id allowed)", status_code=201)
async def create(path: str, request: Request, platform: PlatformDep,
                 caller: Annotated[Principal, Allowed("sensors.write")]) -> Response:
    status, body, headers = await create_path(platform, path, await json_body(request), base_of(request))
    return json_response(body, status, headers)


async def create_hot(platform: Platform, caller: Principal, request: Request) -> Response:
    """``create`` as served by ``citydata.api.hot_routes`` (a sensor's POST of an Observation is the busiest
    SensorThings request): the path parameter is what follows ``/v1.1/``, as the router's ``{path:path}``."""
    path = request.scope["path"][len(HOT_PREFIX):]
    status, body, headers = await create_path(platform, path, await json_body(request), base_of(request))
    return json_response(body, status, headers)


HOT_PREFIX = "/v1.1/"
HOT_ROUTES = [HotRoute("POST", "/v1.1/{path:path}", "sensors.write", 201, create_hot, prefix=HOT_PREFIX)]


async def create_path(platform: Any, path: str, body: Any, base: str) -> tuple[int, Any, dict[str, str]]:
    rpath = parse_path(path)
    if rpath.property_name is not None or rpath.ref or not rpath.is_collection:
        raise ValidationFailed("POST to an entity set or a navigation collection", code="invalid_path")
    entity = rpath.target.entity
    parent = None
    if len(rpath.hops) > 1:
        prev = rpath.hops[-2]
        if prev.id is None:
            raise ValidationFailed("POST under a navigation needs the parent's id", code="invalid_path")
        if entity.name != "Observation":   # the ingest path checks an Observation's stream in its transaction
            await platform.sta.reader(base).scope(parse_path(f"{prev.entity.set_name}({prev.id})"))
        via = rpath.target.via
        assert via is not None
        parent = (prev.entity, via, prev.id)
    if entity.name == "Observation":
        made = await platform.sta.writer.create_observation(body, parent=parent)
        if made.row is not None:   # answer from what was stored, without reading it back
            return 201, entity_json(entity, made.row, base), {"Location": self_link(base, entity, made.id)}
        new_id = made.id
    else:
        new_id = await platform.sta.writer.create(entity, body, parent=parent)
    one, _ = await platform.sta.reader(base).entity(parse_path(f"{entity.set_name}({new_id})"),
                                                    parse_query({}, entity))
    return 201, one, {"Location": self_link(base, entity, new_id)}


@router.patch("/{path:path}", summary="Update an entity's properties (PATCH)", status_code=200)
async def patch(path: str, request: Request, platform: PlatformDep,
                caller: Annotated[Principal, Allowed("sensors.write")]) -> Response:
    status, body, headers = await update_path(platform, path, await json_body(request), base_of(request),
                                              replace=False)
    return json_response(body, status, headers)


@router.put("/{path:path}", summary="Replace an entity (PUT)", status_code=200)
async def put(path: str, request: Request, platform: PlatformDep,
              caller: Annotated[Principal, Allowed("sensors.write")]) -> Response:
    status, body, headers = await update_path(platform, path, await json_body(request), base_of(request),
                                              replace=True)
    return json_response(body, status, headers)


async def update_path(platform: Any, path: str, body: Any, base: str, *, replace: bool
                      ) -> tuple[int, Any, dict[str, str]]:
    rpath = parse_path(path)
    if rpath.is_collection or rpath.property_name is not None or rpath.ref:
        raise ValidationFailed("update a single entity, e.g. Things(1)", code="invalid_path")
    reader = platform.sta.reader(base)
    _, row = await reader.entity(rpath, parse_query({}, rpath.target.entity))
    entity = rpath.target.entity
    await platform.sta.writer.update(entity, int(row["id"]), body, replace=replace)
    one, _ = await reader.entity(parse_path(f"{entity.set_name}({int(row['id'])})"), parse_query({}, entity))
    return 200, one, {}


@router.delete("/{path:path}", summary="Delete an entity (with the standard's cascades)", status_code=200)
async def remove(path: str, request: Request, platform: PlatformDep,
                 caller: Annotated[Principal, Allowed("sensors.write")]) -> Response:
    status, _, _ = await delete_path(platform, path, base_of(request))
    return Response(status_code=status)


async def delete_path(platform: Any, path: str, base: str) -> tuple[int, Any, dict[str, str]]:
    rpath = parse_path(path)
    if rpath.is_collection or rpath.property_name is not None or rpath.ref:
        raise NotFound("DELETE a single entity, e.g. Things(1)", code="invalid_path")
    _, row = await platform.sta.reader(base).entity(rpath, parse_query({}, rpath.target.entity))
    await platform.sta.writer.delete(rpath.target.entity, int(row["id"]))
    return 200, None, {}
