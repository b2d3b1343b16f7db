"""Password hashing (argon2id with OWASP's parameters) and the password rules.

Rules follow OWASP ASVS 2.1 / NIST 800-63B: at least 12 characters, at most 256 (long
passphrases welcome; the bound keeps a hash from being a denial of service), any characters,
no composition rules. A login for an unknown email verifies against `DUMMY_HASH`, so it costs
the same as a wrong password (no user enumeration by timing).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from eventlens.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 256

# argon2id, m=19 MiB, t=2, p=1: the OWASP Password Storage Cheat Sheet's first configuration.
# RFC 9106's 64 MiB x 4 lanes cost a second per login on a small shared host (measured on the
# 2-core CI machine), which turns the login itself into a denial-of-service lever.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
DUMMY_HASH = _HASHER.hash("not a password: makes unknown emails cost a real verification")


def check_rules(password: str, field: str = "password") -> None:
    """InvalidInput naming the rule when `password` is too short or too long."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"password too short: at least {MIN_LENGTH} characters (got {len(password)})",
            field=field,
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"password too long: at most {MAX_LENGTH} characters", field=field)


def hash_password(password: str) -> str:
    check_rules(password)
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with `stored_hash` None (no such user) the dummy hash is
    verified anyway and the answer is False."""
    try:
        ok = _HASHER.verify(stored_hash or DUMMY_HASH, password[: MAX_LENGTH * 4])
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
