"""Password hashing and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from citydata.auth.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from citydata.errors import ValidationFailed


def test_hash_round_trip_and_salting() -> None:
    h1, h2 = hash_password("Correct horse 42"), hash_password("Correct horse 42")
    assert h1 != h2 and h1.startswith("$argon2id$")
    assert "Correct horse" not in h1
    assert verify_password(h1, "Correct horse 42")
    assert not verify_password(h1, "correct horse 42")
    assert not verify_password(h1, "")


def test_verify_never_raises_on_garbage() -> None:
    for bad in ("", "not-a-hash", "$argon2id$v=19$m=1,t=1,p=1$AAAA$BBBB", "$2b$12$abcdefghijklmnopqrstuv"):
        assert verify_password(bad, "whatever") is False


def test_needs_rehash_with_other_parameters() -> None:
    assert not needs_rehash(hash_password("Correct horse 42"))
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("Correct horse 42")
    assert needs_rehash(weak)
    assert verify_password(weak, "Correct horse 42")
    assert needs_rehash("garbage")


@pytest.mark.parametrize(("password", "username", "reason"), [
    ("Sh0rt!pass", "alice", "at least 12 characters"),
    ("", "alice", "at least 12 characters"),
    ("xx-Alice-2026-Q!", "alice", "username"),
    ("Password123!", "bob", "common"),
    ("!!Sunshine2024", "bob", "common"),
    ("P@ssw0rd123456", "bob", "common"),
    ("123456789012", "bob", "common"),
    ("qwertyuiopasdfgh", "bob", "common"),
    ("abababababab12", "bob", "different characters"),
    ("alllowercaseab", "bob", "mix at least 3"),
    ("ALLUPPER12345", "bob", "mix at least 3"),
    ("x" * 2000, "bob", "at most"),
])
def test_policy_rejects_with_a_clear_reason(password: str, username: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_password_policy(password, username)
    assert info.value.code == "weak_password"
    assert reason in info.value.message


@pytest.mark.parametrize("password", [
    "Tr0ub4dor&3-xyz",            # 3+ classes, 12+ chars
    "kx7-Pq2m-Zr9w",
    "correct horse battery staple",  # long passphrase, one class would be enough
    "sixteenlowercase",           # exactly 16, one class
])
def test_policy_accepts_good_passwords(password: str) -> None:
    check_password_policy(password, "alice")
