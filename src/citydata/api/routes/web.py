"""The two web pages and their assets: the IOC dashboard (``/ioc/``) and the tourist app (``/app/``).

The pages are the committed Vite build in ``citydata/web/static`` (no Node needed at run time). The
dashboard's data comes from the platform API with the operator's session cookie; this module only serves
files, the runtime configuration (``config.js``: the map tile URL, the time zone) and a CAP XML preview for the
warning composer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from starlette.responses import FileResponse, RedirectResponse, Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.errors import NotFound, Unavailable
from citydata.incidents.cap import WarningSpec, build_alert, resolve_areas

router = APIRouter(tags=["web"])
STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
PAGES = {"ioc": "ioc/index.html", "app": "app/index.html"}
# files of a page's own folder (the PWA needs its service worker and manifest under /app/ for the scope)
PAGE_FILES = {"sw.js": "application/javascript", "manifest.webmanifest": "application/manifest+json",
              "icon-192.png": "image/png", "icon-512.png": "image/png", "icon.svg": "image/svg+xml"}
SAFE_PATH = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


def _file(relative: str) -> Path:
    path = (STATIC / relative).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        if not (STATIC / PAGES["ioc"]).is_file():
            raise Unavailable("the web bundle is not built (run `make web`)", code="web_not_built")
        raise NotFound(f"no file {relative}", code="not_found")
    return path


def _page(name: str) -> Response:
    return FileResponse(_file(PAGES[name]), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "same-origin"})


@router.get("/ioc", summary="The IOC dashboard (redirect)", include_in_schema=False)
@router.get("/app", summary="The tourist app (redirect)", include_in_schema=False)
async def no_slash(caller: Annotated[Principal, Allowed("web.pages")]) -> Response:
    return RedirectResponse("./", status_code=308)


@router.get("/ioc/", summary="The IOC dashboard (operators log in on the page)", response_class=FileResponse)
async def ioc_page(caller: Annotated[Principal, Allowed("web.pages")]) -> Response:
    return _page("ioc")


@router.get("/app/", summary="The tourist web app (public, installable)", response_class=FileResponse)
async def app_page(caller: Annotated[Principal, Allowed("web.pages")]) -> Response:
    return _page("app")


@router.get("/ioc/config.js", summary="The dashboard's runtime settings", response_class=Response)
@router.get("/app/config.js", summary="The tourist app's runtime settings", response_class=Response)
async def config_js(platform: PlatformDep, caller: Annotated[Principal, Allowed("web.pages")]) -> Response:
    s = platform.settings
    config = {"tileUrl": s.map_tile_url, "tileAttribution": s.map_tile_attribution, "timezone": s.timezone,
              "city": s.city, "k": s.tracking_k}
    body = f"window.CITYDATA_CONFIG = {json.dumps(config, ensure_ascii=False)};\n"
    return Response(body, media_type="application/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


@router.get("/app/{name}", summary="The tourist app's service worker, manifest and icons", response_class=Response)
async def page_file(name: Annotated[str, PathParam(pattern=r"^[a-z0-9.-]+$")],
                    caller: Annotated[Principal, Allowed("web.pages")]) -> Response:
    media = PAGE_FILES.get(name)
    if media is None:
        raise NotFound(f"no file {name}", code="not_found")
    headers = {"Cache-Control": "no-cache"}
    if name == "sw.js":
        headers["Service-Worker-Allowed"] = "/"
    return FileResponse(_file(f"app/{name}"), media_type=media, headers=headers)


@router.get("/static/{path:path}", summary="Built web assets (content-hashed names, cached for a year)",
            response_class=FileResponse)
async def static_file(path: Annotated[str, PathParam(pattern=SAFE_PATH)],
                      caller: Annotated[Principal, Allowed("web.pages")]) -> Response:
    immutable = path.startswith("assets/")
    return FileResponse(_file(path), headers={
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


def bundle_info() -> dict[str, Any]:
    """What ``static/bundle.json`` records about the committed build (``{}`` when it is not built)."""
    path = STATIC / "bundle.json"
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data
