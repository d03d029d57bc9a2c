"""Dependencies: the platform, the caller (principal) and role checks."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request

from citydata.auth import ANONYMOUS, Principal, allowed, roles_for
from citydata.errors import CityDataError, Forbidden, Unauthorized

if TYPE_CHECKING:
    from citydata.app import Platform


PRINCIPAL_KEY = "citydata.principal"   # the request's resolved caller, kept in the ASGI scope


def get_platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


async def _platform(request: Request) -> Platform:
    """``get_platform`` as an async dependency: FastAPI runs a plain ``def`` dependency on its thread pool, a
    thread hop (and GIL hand-over) per request for one attribute lookup."""
    return get_platform(request)


PlatformDep = Annotated["Platform", Depends(_platform)]
# A database row id in a path: bounded to the 64-bit integer columns, so an out-of-range id is a 422 (found by
# the schemathesis run: 2**70 reached the SQLite driver and answered 500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def credentials_of(request: Request) -> str | None:
    """The presented credential: Bearer token or session, or the password of HTTP Basic (FROST clients)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer":
            return value
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as err:
                raise Unauthorized("malformed Basic credentials", code="invalid_token") from err
            user, _, password = decoded.partition(":")
            return password or user
        raise Unauthorized("unsupported authorization scheme (use Bearer or Basic)", code="invalid_token")
    return request.cookies.get("citydata_session")


async def resolve_principal(request: Request) -> Principal:
    cached = request.scope.get(PRINCIPAL_KEY)     # a plain dict read (``request.state`` misses raise inside)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    platform = get_platform(request)
    credential = credentials_of(request)
    if credential is None:
        principal = ANONYMOUS
    else:
        key = client_key(request)
        platform.throttle.check(key)
        try:
            if credential.startswith("cd_"):
                principal = await platform.tokens.verify(credential)
            else:
                principal = platform.sessions.verify(credential, platform.clock.now())
        except CityDataError as err:
            platform.throttle.failed(key)
            platform.metrics.auth_failures.labels(err.code).inc()
            raise
        platform.throttle.succeeded(key)
    request.scope[PRINCIPAL_KEY] = principal
    return principal


CallerDep = Annotated[Principal, Depends(resolve_principal)]


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets the request through only for roles holding ``permission``.

    The permission is recorded on the dependency, so the route table can be documented and tested."""
    roles = roles_for(permission)  # fails at import of the route module when the name is a typo

    async def dependency(request: Request) -> Principal:
        principal = await resolve_principal(request)
        if principal.role == "public" and not get_platform(request).settings.read_public \
                and permission.endswith(".read"):
            raise Unauthorized("authentication required", code="unauthorized")
        if not allowed(principal.role, permission):
            if principal.kind == "anonymous":
                raise Unauthorized("authentication required", code="unauthorized")
            raise Forbidden(f"role {principal.role} may not {permission}", code="forbidden")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def Allowed(permission: str) -> object:
    """``caller: Annotated[Principal, Allowed("alerts.read")]``."""
    return Depends(require(permission))
