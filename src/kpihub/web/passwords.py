"""Dashboard passwords: argon2id (RFC 9106) via argon2-cffi, with its default costs.

An unknown email is checked against a dummy hash of the same parameters, so a
sign-in attempt costs the same whether or not the account exists.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps one request's work bounded


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash("kpihub: no user has this password")


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters (a passphrase is fine)."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    return None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such user) costs the same and fails."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    try:
        ok = _hasher().verify(password_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None
