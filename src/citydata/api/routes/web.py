"""The two web pages and their assets: the IOC dashboard (``/ioc/``) and the tourist app (``/app/``).

The pages are the committed Vite build in ``citydata/web/static`` (no Node needed at run time). The
dashboard's data comes from the platform API with the operator's session cookie; this module only serves
files, the runtime configuration (``config.js``: the map tile URL, the time zone) and a CAP XML preview for the
warning composer."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from starlette.responses import FileResponse, RedirectResponse, Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal, roles_for
from citydata.errors import NotFound
from citydata.incidents.cap import WarningSpec, build_alert, resolve_areas
from citydata.web.bundle import PAGES

if TYPE_CHECKING:
    from citydata.app import Platform

router = APIRouter(tags=["web"])
# files of a page's own folder (the PWA needs its service worker and manifest under /app/ for the scope)
PAGE_FILES = {"sw.js": "application/javascript", "manifest.webmanifest": "application/manifest+json",
              "icon-192.png": "image/png", "icon-512.png": "image/png", "icon.svg": "image/svg+xml"}
SAFE_PATH = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


async def _page_visitor() -> None:
    """The pages, their settings and assets are the same for every caller and carry no data, so the caller's
    credentials are not checked: a stale or revoked session cookie still gets the sign-in page. (Checking it
    answered 401 problem JSON instead of the page and, after ``login_max_failures`` reloads, throttled the
    address so that it could not sign in either.) The data the pages load is guarded by its own routes."""


_page_visitor.permission = "web.pages"  # type: ignore[attr-defined]   # for the route table and its tests
_page_visitor.roles = roles_for("web.pages")  # type: ignore[attr-defined]
Visitor = Annotated[None, Depends(_page_visitor)]


def _file(platform: Platform, relative: str, *, media_type: str | None = None,
          headers: dict[str, str]) -> FileResponse:
    path, st = platform.web.locate(relative)
    return FileResponse(path, media_type=media_type, headers=headers, stat_result=st)


def _page(platform: Platform, name: str) -> Response:
    return _file(platform, PAGES[name], media_type="text/html; charset=utf-8",
                 headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                          "Referrer-Policy": "same-origin"})


@router.get("/ioc", summary="The IOC dashboard (redirect)", include_in_schema=False)
@router.get("/app", summary="The tourist app (redirect)", include_in_schema=False)
async def no_slash(visitor: Visitor) -> Response:
    return RedirectResponse("./", status_code=308)


@router.get("/ioc/", summary="The IOC dashboard (operators log in on the page)", response_class=FileResponse)
async def ioc_page(platform: PlatformDep, visitor: Visitor) -> Response:
    return _page(platform, "ioc")


@router.get("/app/", summary="The tourist web app (public, installable)", response_class=FileResponse)
async def app_page(platform: PlatformDep, visitor: Visitor) -> Response:
    return _page(platform, "app")


@router.get("/ioc/config.js", summary="The dashboard's runtime settings", response_class=Response)
@router.get("/app/config.js", summary="The tourist app's runtime settings", response_class=Response)
async def config_js(platform: PlatformDep, visitor: Visitor) -> Response:
    s = platform.settings
    config = {"tileUrl": s.map_tile_url, "tileAttribution": s.map_tile_attribution, "timezone": s.timezone,
              "city": s.city, "k": s.tracking_k}
    body = f"window.CITYDATA_CONFIG = {json.dumps(config, ensure_ascii=False)};\n"
    return Response(body, media_type="application/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


@router.get("/app/{name}", summary="The tourist app's service worker, manifest and icons", response_class=Response)
async def page_file(name: Annotated[str, PathParam(pattern=r"^[a-z0-9.-]+$")], platform: PlatformDep,
                    visitor: Visitor) -> Response:
    media = PAGE_FILES.get(name)
    if media is None:
        raise NotFound(f"no file {name}", code="not_found")
    headers = {"Cache-Control": "no-cache"}
    if name == "sw.js":
        headers["Service-Worker-Allowed"] = "/"
    return _file(platform, f"app/{name}", media_type=media, headers=headers)


@router.get("/static/{path:path}", summary="Built web assets (content-hashed names, cached for a year)",
            response_class=FileResponse)
async def static_file(path: Annotated[str, PathParam(pattern=SAFE_PATH)], platform: PlatformDep,
                      visitor: Visitor) -> Response:
    immutable = path.startswith("assets/")
    return _file(platform, path, headers={
        "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
        "X-Content-Type-Options": "nosniff"})


@router.post("/api/v1/web/cap-preview", summary="The CAP 1.2 XML a warning would publish (nothing is stored)",
             response_class=Response)
async def cap_preview(body: WarningSpec, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("cap.issue")]) -> Response:
    s = platform.settings
    body.check_publishable()
    areas = resolve_areas(body, platform.geography)
    identifier = f"{s.city}.ioc.preview-{uuid.uuid4().hex}"
    xml = build_alert(identifier=identifier, sender=s.ioc_cap_sender, sent=platform.clock.now(),
                      status=s.ioc_cap_status, msg_type="Alert", spec=body, areas=areas,
                      sender_name=s.ioc_cap_sender_name, tz=s.timezone)
    return Response(xml, media_type="application/xml; charset=utf-8")


@router.get("/api/v1/web/arrivals-by-checkpoint",
            summary="Arrivals per checkpoint over the last days, for the dashboard chart (counts under k suppressed)")
async def arrivals_by_checkpoint(platform: PlatformDep, caller: Annotated[Principal, Allowed("analytics.read")],
                                 days: Annotated[int, Query(ge=1, le=366)] = 7) -> dict[str, Any]:
    from sqlalchemy import func, select

    from citydata.tracking.schema import tracking_travellers as t

    since = platform.clock.now() - timedelta(days=days)
    rows = await platform.store.fetch_all(select(t.c.checkpoint, func.count().label("n"))
                                          .where(t.c.arrived_at >= since).group_by(t.c.checkpoint))
    k = platform.settings.tracking_k
    geo = platform.geography
    items, suppressed = [], 0
    for r in sorted(rows, key=lambda r: str(r["checkpoint"])):
        if int(r["n"]) < k:
            suppressed += 1
            continue
        place = geo.checkpoint(str(r["checkpoint"])) if geo is not None else None
        items.append({"checkpoint": r["checkpoint"], "name_en": place.name_en if place else r["checkpoint"],
                      "name_th": place.name_th if place else None, "arrivals": int(r["n"])})
    return {"since": since.isoformat(), "days": days, "k": k, "suppressed_checkpoints": suppressed, "items": items}
