"""Session JWTs: round trip, expiry under a given clock, tampering."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from citydata.auth import ANONYMOUS, Principal, Role, SessionService
from citydata.clock import DrivenClock
from citydata.errors import Unauthorized, ValidationFailed

KEY = b"k" * 16 + b"session-test-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip_carries_the_principal(clock: DrivenClock) -> None:
    svc = SessionService(KEY)
    p = Principal("somchai", Role.TOURIST_POLICE, "user", agency="patong-station", user_id=12)
    token = svc.issue(p, 3600, clock.now())
    assert svc.verify(token, clock.now()) == p
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"jti", "iat", "exp", "role", "agency", "uid", "sub"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 3600 and claims["uid"] == 12
    assert svc.issue(p, 3600, clock.now()) != token     # a fresh jti each time


def test_expiry_follows_the_given_time(clock: DrivenClock) -> None:
    svc = SessionService(KEY)
    token = svc.issue(Principal("a", Role.ADMIN, "user", user_id=1), 60, clock.now())
    svc.verify(token, clock.advance(59))
    with pytest.raises(Unauthorized) as info:
        svc.verify(token, clock.advance(1))
    assert info.value.code == "session_expired"
    # issued in the future (beyond the skew allowance): not accepted
    later = svc.issue(Principal("a", Role.ADMIN, "user", user_id=1), 60, clock.now() + timedelta(hours=1))
    with pytest.raises(Unauthorized) as info:
        svc.verify(later, clock.now())
    assert info.value.code == "invalid_session"


def test_tampering_and_foreign_keys_are_refused(clock: DrivenClock) -> None:
    svc = SessionService(KEY)
    token = svc.issue(Principal("clerk", Role.HOTEL, "user", user_id=5), 600, clock.now())
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    bad_sig = ".".join([header, payload, signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")])
    other_key = SessionService(b"another-secret-key-of-32-bytes!!").issue(
        Principal("clerk", Role.ADMIN, "user", user_id=5), 600, clock.now())
    unsigned = jwt.encode({**claims, "role": "admin"}, "", algorithm="none")
    garbage = ["", "abc", "a.b.c", token + "x", "é" * 10, "x" * 10_000]
    for bad in (forged, bad_sig, other_key, unsigned, *garbage):
        with pytest.raises(Unauthorized) as info:
            svc.verify(bad, clock.now())
        assert info.value.code == "invalid_session", bad[:30]


def test_the_session_key_is_not_the_raw_secret(clock: DrivenClock) -> None:
    token = SessionService(KEY).issue(Principal("a", Role.ADMIN, "user", user_id=1), 60, clock.now())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, KEY, algorithms=["HS256"])


def test_no_session_for_anonymous_or_zero_ttl(clock: DrivenClock) -> None:
    svc = SessionService(KEY)
    with pytest.raises(ValidationFailed):
        svc.issue(ANONYMOUS, 60, clock.now())
    with pytest.raises(ValidationFailed):
        svc.issue(Principal("a", Role.ADMIN, "user"), 0, clock.now())
