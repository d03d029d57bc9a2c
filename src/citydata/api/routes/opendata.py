"""Open data over HTTP: downloads (CSV, GeoJSON, Parquet), the DCAT JSON-LD catalogue, and the management of
open-data API keys (admin and analyst roles). Callers present an open-data key as ``X-CKAN-API-Key``, a bare
``Authorization: <key>`` (the ckanapi client sends both) or ``Authorization: Bearer <key>``; platform tokens
work too; anonymous callers are allowed unless CITYDATA_OPENDATA_REQUIRE_KEY is set. Keys and anonymous
client addresses are rate limited (429 with Retry-After); key usage is counted per day."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from citydata.api.deps import Allowed, PlatformDep, client_key, get_platform, resolve_principal
from citydata.auth import Principal, allowed, roles_for
from citydata.errors import CityDataError, NotFound, Unauthorized, Unavailable
from citydata.opendata.dcat import dcat_catalog
from citydata.opendata.keys import PREFIX
from citydata.opendata.service import MEDIA, OpenDataService

router = APIRouter(prefix="/api/v1/opendata", tags=["opendata"])
PERMISSION = "opendata.read"


@dataclass
class Access:
    who: str                                   # key id, principal or anonymous client address
    key_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: CityDataError | None = None


def service_of(platform: Any) -> OpenDataService:
    service = getattr(platform, "opendata", None)
    if service is None:
        raise Unavailable("open data is not running on this node", code="opendata_unavailable")
    return service  # type: ignore[no-any-return]


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-ckan-api-key")
    if key:
        return key.strip()
    auth = (request.headers.get("authorization") or "").strip()
    if auth.startswith(PREFIX):
        return auth
    if auth.lower().startswith("bearer ") and auth[7:].strip().startswith(PREFIX):
        return auth[7:].strip()
    return None


async def check_access(request: Request) -> Access:
    """Who is calling, after the rate limit; raises 401/429 (``CityDataError``)."""
    platform = get_platform(request)
    service = service_of(platform)
    key = presented_key(request)
    if key is not None:
        info = await service.keys.verify(key)
        headers = await service.keys.admit(f"key:{info.id}", info.rate_per_min, count_as=info.id)
        return Access(info.id, info.id, headers)
    principal: Principal = await resolve_principal(request)
    if principal.kind != "anonymous":
        if not allowed(principal.role, PERMISSION):   # every role holds it today; kept for the table's sake
            raise Unauthorized(f"role {principal.role} may not read open data", code="unauthorized")
        return Access(f"principal:{principal.subject}")
    if platform.settings.opendata_require_key or not platform.settings.read_public:
        raise Unauthorized("an open-data API key is required (X-CKAN-API-Key)", code="unauthorized")
    addr = client_key(request)
    headers = await service.keys.admit(f"anon:{addr}", platform.settings.opendata_anonymous_rate_per_min,
                                       count_as="anonymous")
    return Access(f"anon:{addr}", None, headers)


def _declare(dependency: Any) -> Any:
    dependency.permission = PERMISSION
    dependency.roles = roles_for(PERMISSION)
    return dependency


async def _raising(request: Request) -> Access:
    return await check_access(request)


async def _capturing(request: Request) -> Access:
    """For the CKAN API, which answers errors in CKAN's envelope: the error is handed to the route."""
    try:
        return await check_access(request)
    except CityDataError as err:
        return Access("error", error=err)


OpenDataCaller = Annotated[Access, Depends(_declare(_raising))]
CkanCaller = Annotated[Access, Depends(_declare(_capturing))]


def base_url(request: Request, platform: Any) -> str:
    return (platform.settings.public_url or str(request.base_url)).rstrip("/")


@router.get("/catalog.jsonld", summary="The open-data catalogue as DCAT (JSON-LD)", response_class=Response,
            responses={200: {"description": "The DCAT catalogue",
                             "content": {"application/ld+json": {"schema": {"type": "object"}}}}})
async def dcat(request: Request, platform: PlatformDep, caller: OpenDataCaller) -> Response:
    import orjson

    svc = service_of(platform)
    modified = platform.clock.now().replace(minute=0, second=0, microsecond=0).isoformat()
    body = dcat_catalog(svc.catalogue, base_url(request, platform), modified)
    return Response(orjson.dumps(body), media_type="application/ld+json", headers=caller.headers)


@router.get("/datasets/{filename}", summary="Download an open dataset: NAME.csv, NAME.geojson or NAME.parquet")
async def download(filename: str, platform: PlatformDep, caller: OpenDataCaller) -> Response:
    name, _, fmt = filename.rpartition(".")
    if fmt not in MEDIA or not name:
        raise NotFound(f"no download {filename!r} (NAME.csv, NAME.geojson or NAME.parquet)", code="not_found")
    svc = service_of(platform)
    body = await svc.download(name, fmt)
    headers = {**caller.headers, "Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return Response(body, media_type=MEDIA[fmt], headers=headers)


# -- keys (admin, analyst) ------------------------------------------------------------------------------------
class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The startup or application.")
    organization: str | None = Field(None, max_length=200)
    rate_per_min: int | None = Field(None, ge=1, le=100_000, description="Default: CITYDATA_OPENDATA_KEY_RATE_PER_MIN")


Admin = Annotated[Principal, Allowed("opendata.admin")]


@router.post("/keys", status_code=201, summary="Create an open-data API key (shown once)")
async def create_key(body: KeyCreate, platform: PlatformDep, caller: Admin) -> dict[str, Any]:
    info, key = await service_of(platform).keys.create(body.name, body.organization, body.rate_per_min,
                                                      created_by=caller.subject)
    return {"id": info.id, "name": info.name, "organization": info.organization,
            "rate_per_min": info.rate_per_min, "key": key}


@router.get("/keys", summary="Open-data API keys with their request counts")
async def list_keys(platform: PlatformDep, caller: Admin) -> dict[str, Any]:
    return {"items": await service_of(platform).keys.all()}


@router.get("/keys/{key_id}/usage", summary="One key's requests per day")
async def key_usage(key_id: str, platform: PlatformDep, caller: Admin) -> dict[str, Any]:
    return {"id": key_id, "days": await service_of(platform).keys.usage(key_id)}


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an open-data API key")
async def revoke_key(key_id: str, platform: PlatformDep, caller: Admin) -> Response:
    await service_of(platform).keys.revoke(key_id)
    return Response(status_code=204)
