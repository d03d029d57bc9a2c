"""Admin: dead letters, the audit log, users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal, Role

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/dead-letters", summary="Inputs that were refused or could not be processed, with the reason")
async def dead_letters(platform: PlatformDep, caller: Annotated[Principal, Allowed("admin.deadletters")],
                       source: Annotated[str | None, Query(max_length=40)] = None,
                       since: datetime | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    items = await platform.dead_letters.list(source=source, since=since, limit=limit, offset=offset)
    return {"items": items, "total": await platform.dead_letters.count(source)}


@router.get("/audit", summary="The audit log")
async def audit(platform: PlatformDep, caller: Annotated[Principal, Allowed("audit.read")],
                subject_type: Annotated[str | None, Query(max_length=60)] = None,
                subject_id: Annotated[str | None, Query(max_length=100)] = None,
                actor: Annotated[str | None, Query(max_length=100)] = None,
                action: Annotated[str | None, Query(max_length=100)] = None,
                since: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    items = await platform.audit.query(subject_type=subject_type, subject_id=subject_id, actor=actor,
                                       action=action, since=since, limit=limit)
    return {"items": items}


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=500)
    role: Role
    agency: str | None = Field(None, max_length=80)
    display_name: str | None = Field(None, max_length=200)


@router.post("/users", summary="Create a user (password policy applies)", status_code=201)
async def create_user(body: UserIn, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("users.manage")]) -> dict[str, Any]:
    user_id = await platform.users.create(body.username, body.password, body.role, agency=body.agency,
                                          display_name=body.display_name)
    await platform.audit.record(caller, "user.create", subject_type="user", subject_id=body.username,
                                detail={"role": str(body.role), "agency": body.agency})
    return {"id": user_id, "username": body.username, "role": str(body.role), "agency": body.agency}


@router.get("/users", summary="List users")
async def list_users(platform: PlatformDep,
                     caller: Annotated[Principal, Allowed("users.manage")]) -> dict[str, Any]:
    return {"items": await platform.users.list()}
