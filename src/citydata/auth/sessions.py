"""Login sessions as signed JWTs (HS256, pyjwt).

The signing key is derived from the platform secret key (``derive_key(secret_key, "session-jwt")``), so it is
never the key that hashes API token secrets. Time comes from the caller (``now``), so the driven clock works.
Claims: ``sub`` (the principal's subject), ``kind``, ``role``, ``agency``, ``uid`` (user id), ``tid``
(token id), ``did`` (device id), ``jti``, ``iat``, ``exp``, ``iss``.

A session stays valid until it expires even if the user is disabled meanwhile; keep ``ttl_s`` short (minutes
to hours) or re-check the user where it matters.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import jwt

from citydata.auth.principal import Principal
from citydata.auth.roles import Role
from citydata.auth.tokens import check_secret_key, derive_key
from citydata.errors import Unauthorized, ValidationFailed

ALGORITHM = "HS256"
ISSUER = "citydata"
CLOCK_SKEW_S = 60          # an ``iat`` this far in the future is still accepted
MAX_SESSION_LENGTH = 8192  # bytes; anything longer is not one of ours


def _invalid() -> Unauthorized:
    return Unauthorized("invalid session", code="invalid_session")


class SessionService:
    """Issue and verify session JWTs."""

    def __init__(self, secret_key: bytes) -> None:
        check_secret_key(secret_key)
        self._key = derive_key(secret_key, "session-jwt")

    def issue(self, principal: Principal, ttl_s: float, now: datetime) -> str:
        """A signed session for ``principal`` valid for ``ttl_s`` seconds from ``now``."""
        if principal.kind == "anonymous":
            raise ValidationFailed("no session for an anonymous caller", code="invalid_principal")
        if ttl_s <= 0:
            raise ValidationFailed("a session needs a positive lifetime", code="invalid_ttl")
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        iat = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": principal.subject,
            "kind": principal.kind,
            "role": principal.role.value,
            "agency": principal.agency,
            "uid": principal.user_id,
            "tid": principal.token_id,
            "did": principal.device_id,
            "jti": secrets.token_urlsafe(16),
            "iat": iat,
            "exp": iat + max(1, round(ttl_s)),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, now: datetime) -> Principal:
        """The principal of a valid session; ``Unauthorized`` with code ``invalid_session`` (malformed, bad
        signature, wrong algorithm, missing claims) or ``session_expired``."""
        if not isinstance(token, str) or not token or len(token) > MAX_SESSION_LENGTH or not token.isascii():
            raise _invalid()
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["exp", "iat", "jti", "sub", "role", "kind"],
                         "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            raise _invalid() from None
        try:
            exp, iat = int(claims["exp"]), int(claims["iat"])
            role = Role(claims["role"])
            kind = claims["kind"]
            subject = claims["sub"]
            if kind not in ("user", "token") or not isinstance(subject, str) or not subject:
                raise ValueError(kind)
            uid = claims.get("uid")
            if uid is not None and not isinstance(uid, int):
                raise ValueError("uid")
            principal = Principal(subject, role, kind, agency=_opt_str(claims.get("agency")),
                                  token_id=_opt_str(claims.get("tid")), device_id=_opt_str(claims.get("did")),
                                  user_id=uid)
        except (ValueError, TypeError, KeyError):
            raise _invalid() from None
        ts = now.timestamp()
        if iat > ts + CLOCK_SKEW_S:
            raise _invalid()
        if ts >= exp:
            raise Unauthorized("session expired; log in again", code="session_expired")
        return principal


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError("expected a string")
