"""Password hashing (argon2id via argon2-cffi) and the password policy.

Hashing costs tens of milliseconds of CPU on purpose; async callers run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from citydata.errors import ValidationFailed

MIN_LENGTH = 12
LONG_ENOUGH = 16          # a passphrase this long needs no character-class mix
MIN_CLASSES = 3
MIN_DISTINCT = 6
MAX_LENGTH = 1024         # argon2 copes, but nobody types more; bounds the work per attempt

# The most common passwords and the usual bases of longer ones (checked lower-cased, also with leading and
# trailing digits and symbols removed, so "Password123!" and "!!sunshine2024" are both caught).
COMMON_PASSWORDS: frozenset[str] = frozenset({
    "123456", "12345678", "123456789", "1234567890", "123123", "111111", "000000", "654321", "666666",
    "password", "passw0rd", "p@ssw0rd", "p@ssword", "pass", "passwd", "password1", "qwerty", "qwertyuiop",
    "qwerty123", "1q2w3e4r", "1qaz2wsx", "zaq12wsx", "asdfgh", "asdfghjkl", "zxcvbnm", "abc123", "abcdef",
    "letmein", "welcome", "iloveyou", "admin", "administrator", "root", "toor", "login", "master", "monkey",
    "dragon", "sunshine", "princess", "football", "baseball", "superman", "batman", "starwars", "shadow",
    "michael", "jennifer", "trustno1", "whatever", "freedom", "hello", "hellohello", "changeme", "change",
    "secret", "default", "guest", "test", "testing", "computer", "internet", "summer", "winter", "spring",
    "autumn", "phuket", "thailand", "bangkok", "citydata", "patong", "qwertyuiopasdfghjkl",
    "1234567890123456", "12345678901234567890", "123456789012", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u8i",
    "qwertyuiopasdfgh", "abcdefghijklmnop", "abcdefghijkl", "aaaaaaaaaaaa", "passwordpassword",
    "iloveyouiloveyou", "password1234", "qwerty123456", "adminadmin", "administrator1",
})
_EDGE = "0123456789!@#$%^&*()-_=+[]{};:'\",.<>/?\\|`~ "

_hasher = PasswordHasher()   # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted, self-describing)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. Never raises: mismatch or malformed hash is False."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (re-hash on the next good login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, verified against when a user is unknown so timing does not tell."""
    return hash_password(secrets.token_urlsafe(16))


def _classes(password: str) -> int:
    return sum((
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ))


def _weak(reason: str) -> ValidationFailed:
    return ValidationFailed(f"password too weak: {reason}", code="weak_password")


def check_password_policy(password: str, username: str | None = None) -> None:
    """Raise ``ValidationFailed(code="weak_password")`` with the reason unless ``password`` is acceptable:
    at least 12 characters; not containing the username; not a common password (or one with a few digits or
    symbols around it); at least 3 character classes (lower, upper, digit, other) unless 16+ characters;
    at least 6 distinct characters."""
    if len(password) < MIN_LENGTH:
        raise _weak(f"it must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise _weak(f"it must have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if username and len(username) >= 3 and username.lower() in lowered:
        raise _weak("it must not contain the username")
    if lowered in COMMON_PASSWORDS or lowered.strip(_EDGE) in COMMON_PASSWORDS:
        raise _weak("it is, or is based on, a very common password")
    if len(set(password)) < MIN_DISTINCT:
        raise _weak(f"it must have at least {MIN_DISTINCT} different characters")
    if len(password) < LONG_ENOUGH and _classes(password) < MIN_CLASSES:
        raise _weak(f"it must mix at least {MIN_CLASSES} of lower case, upper case, digits and symbols, "
                    f"or have at least {LONG_ENOUGH} characters")
