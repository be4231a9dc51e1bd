"""The cached access token, and a look inside it (without verifying) for diagnostics."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TokenCache", "token_claims"]


class TokenCache:
    """One access token, given out until shortly before it expires.

    It is refreshed ``expires_in / 10`` seconds before the end (at most a minute),
    so a request never leaves with a token that expires on the way.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self.expires_in = 0.0

    def get(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def store(self, token: str, expires_in: float) -> None:
        self._token = token
        self.expires_in = expires_in
        self._refresh_at = self._clock() + expires_in - min(60.0, expires_in / 10)

    def clear(self) -> None:
        self._token = None


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT access token, *not verified*: for display and diagnosis only."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
