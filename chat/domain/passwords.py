"""Password hashing with argon2id at OWASP's recommended parameters (19 MiB, t=2, p=1)."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError

NO_PASSWORD = "!external"  # noqa: S105 - a marker, not a secret
"""Stored for users who sign in only through an OpenID Provider: no argon2 hash verifies
against it, so password login cannot reach those accounts."""


class PasswordHasher:
    def __init__(self, memory_kib: int = 19 * 1024, time_cost: int = 2, parallelism: int = 1):
        self._argon2 = _Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # A real hash to verify against when the user does not exist, so a login for an
        # unknown name costs the same time as one with a wrong password.
        self._dummy = self._argon2.hash("not-a-password")

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash or self._dummy, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)
