"""Imported government datasets (read side, for analysts): list, one version's metadata and history, rows.
Imports run from the CLI (``citydata import dataset FILE --as NAME``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from citydata.api.deps import Allowed, PlatformDep
from citydata.api.routes.analytics import _service
from citydata.auth import Principal

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
Analyst = Annotated[Principal, Allowed("analytics.read")]


@router.get("", summary="Imported datasets with their current version")
async def list_datasets(platform: PlatformDep, caller: Analyst) -> dict[str, Any]:
    return {"items": await _service(platform).datasets.all()}


@router.get("/{name}", summary="A dataset version's metadata (columns, join, rejections) and its history")
async def show(name: str, platform: PlatformDep, caller: Analyst,
               version: Annotated[int | None, Query(ge=1, description="Default: the current version")] = None,
               ) -> dict[str, Any]:
    svc = _service(platform).datasets
    meta = await svc.version(name, version)
    meta["history"] = await svc.versions(name)
    return meta


@router.get("/{name}/rows", summary="A dataset version's typed rows with their reference-geography place")
async def rows(name: str, platform: PlatformDep, caller: Analyst,
               version: Annotated[int | None, Query(ge=1)] = None,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
               offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    found = await _service(platform).datasets.rows(name, version)
    return {"total": len(found), "items": found[offset:offset + limit]}
