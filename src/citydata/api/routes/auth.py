"""Log in (sessions), who am I, and API tokens for devices and integrations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from citydata.api.deps import Allowed, CallerDep, PlatformDep, client_key
from citydata.auth import Principal, Role
from citydata.errors import CityDataError

router = APIRouter(prefix="/api/v1", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=500)


class SessionOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    username: str


@router.post("/auth/login", summary="Log in with a password; returns a session token (also set as a cookie)",
             response_model=SessionOut)
async def login(body: LoginIn, request: Request, response: Response, platform: PlatformDep) -> SessionOut:
    keys = (client_key(request), f"user:{body.username}")
    for key in keys:
        platform.throttle.check(key)
    try:
        principal = await platform.users.authenticate(body.username, body.password)
    except CityDataError as err:
        for key in keys:
            platform.throttle.failed(key)
        platform.metrics.auth_failures.labels(err.code).inc()
        raise
    for key in keys:
        platform.throttle.succeeded(key)
    ttl = platform.settings.jwt_ttl_s
    token = platform.sessions.issue(principal, ttl, platform.clock.now())
    response.set_cookie("citydata_session", token, max_age=ttl, httponly=True, samesite="strict",
                        secure=platform.settings.base_url.startswith("https"))
    await platform.audit.record(principal, "auth.login", subject_type="user", subject_id=body.username,
                                client=client_key(request))
    return SessionOut(access_token=token, expires_in=ttl, role=str(principal.role), username=principal.subject)


@router.post("/auth/logout", summary="Forget the session cookie", status_code=204)
async def logout(response: Response) -> Response:
    response.delete_cookie("citydata_session")
    response.status_code = 204
    return response


@router.get("/auth/me", summary="The caller as the platform sees it")
async def me(caller: CallerDep) -> dict[str, Any]:
    return {"subject": caller.subject, "role": str(caller.role), "kind": caller.kind, "agency": caller.agency,
            "device_id": caller.device_id}


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str = Field(min_length=1, max_length=200)
    agency: str | None = Field(None, max_length=80)
    device_id: str | None = Field(None, max_length=100)
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    id: str
    token: str = Field(description="Shown once; store it safely.")
    role: str
    name: str


@router.post("/tokens", summary="Create an API token (admin)", status_code=201, response_model=TokenOut)
async def create_token(body: TokenIn, platform: PlatformDep,
                       caller: Annotated[Principal, Allowed("tokens.manage")]) -> TokenOut:
    if body.role == Role.PUBLIC:
        from citydata.errors import ValidationFailed

        raise ValidationFailed("role: a token for the public role is pointless", code="invalid")
    if body.device_id:
        await platform.devices.get(body.device_id)
    token_id, token = await platform.tokens.create(body.role, body.name, agency=body.agency,
                                                   device_id=body.device_id, created_by=caller.subject,
                                                   expires_at=body.expires_at)
    await platform.audit.record(caller, "token.create", subject_type="token", subject_id=token_id,
                                detail={"role": str(body.role), "name": body.name})
    return TokenOut(id=token_id, token=token, role=str(body.role), name=body.name)


@router.get("/tokens", summary="List API tokens (never their secrets)")
async def list_tokens(platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("tokens.manage")]) -> dict[str, list[dict[str, Any]]]:
    return {"items": await platform.tokens.list()}


@router.delete("/tokens/{token_id}", summary="Revoke an API token", status_code=204)
async def revoke_token(token_id: str, platform: PlatformDep,
                       caller: Annotated[Principal, Allowed("tokens.manage")]) -> Response:
    await platform.tokens.revoke(token_id)
    await platform.audit.record(caller, "token.revoke", subject_type="token", subject_id=token_id)
    return Response(status_code=204)

