"""Throttling with the ``limits`` library behind a small interface.

Fixed windows, as Laravel's throttle middleware: a client gets ``limit`` requests per
window; the counter starts with the window's first request and resets when it ends.
The storage comes from a URL (``memory://`` for one node; ``redis://`` shares the
counters across nodes), so the same code serves both.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from kpihub.errors import LimitState, RateLimited


class Limiter(Protocol):
    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        """Count one request; raise ``RateLimited`` when over ``limit`` per window."""

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        """Where ``key`` stands, without counting a request."""


class LimitsLimiter:
    """``Limiter`` on the ``limits`` library; ``window`` seconds per window."""

    def __init__(self, storage_url: str = "memory://", *, window: int = 60) -> None:
        self._storage = storage_from_string(
            "async+" + storage_url if not storage_url.startswith("async+") else storage_url
        )
        self._strategy = FixedWindowRateLimiter(self._storage)
        self._window = window
        self._items: dict[int, RateLimitItem] = {}

    def _item(self, limit: int) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerSecond(limit, self._window)
        return item

    async def _state(self, item: RateLimitItem, namespace: str, key: str, limit: int) -> LimitState:
        stats = await self._strategy.get_window_stats(item, namespace, key)
        reset_at = (
            math.ceil(stats.reset_time) if stats.reset_time else int(time.time()) + self._window
        )
        return LimitState(
            limit=limit,
            remaining=max(stats.remaining, 0),
            reset_at=reset_at,
            window=self._window,
            policy=namespace,
        )

    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        item = self._item(limit)
        allowed = await self._strategy.hit(item, namespace, key)
        state = await self._state(item, namespace, key, limit)
        if not allowed:
            raise RateLimited(state)
        return state

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        return await self._state(self._item(limit), namespace, key, limit)


def rate_limit_headers(
    state: LimitState, *, limited: bool, now: float | None = None
) -> dict[str, str]:
    """Laravel's ``X-RateLimit-*`` and the IETF ``RateLimit``/``RateLimit-Policy`` headers."""
    now = time.time() if now is None else now
    reset_in = min(state.window, max(0, math.ceil(state.reset_at - now)))
    headers = {
        "X-RateLimit-Limit": str(state.limit),
        "X-RateLimit-Remaining": str(state.remaining),
        # draft-ietf-httpapi-ratelimit-headers: structured fields, q = quota, w = window,
        # r = remaining, t = seconds until the quota resets.
        "RateLimit-Policy": f'"{state.policy}";q={state.limit};w={state.window}',
        "RateLimit": f'"{state.policy}";r={state.remaining};t={reset_in}',
    }
    if limited:
        headers["Retry-After"] = str(max(1, reset_in))
        headers["X-RateLimit-Reset"] = str(state.reset_at)
    return headers
