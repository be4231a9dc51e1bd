"""Throttling with the ``limits`` library behind a small interface.

Fixed windows, as Laravel's throttle middleware: a client gets ``limit`` requests per
window; the counter starts with the window's first request and resets when it ends.
The storage comes from a URL (``memory://`` for one node, kept in
``SweptMemoryStorage``; ``redis://`` shares the counters across nodes), so the same
code serves both.

With Redis, ``FallbackLimiter`` decides what happens while Redis cannot be reached
(``KPIHUB_REDIS_FAILURE_POLICY``): ``open`` decides from this node's memory, so the
API stays up with per-node limits; ``closed`` refuses with ``StoreUnavailable`` (503).
``build_limiter(settings)`` assembles the whole chain.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.storage import Storage as AsyncStorage
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from kpihub.errors import LimitState, RateLimited, StoreUnavailable

if TYPE_CHECKING:
    from kpihub.metrics import Metrics
    from kpihub.settings import Settings

log = logging.getLogger("kpihub.ratelimit")

FailurePolicy = Literal["open", "closed"]
REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
REDIS_TIMEOUT = 0.25
"""Seconds to connect to Redis or wait for an answer: a dead Redis must not stall requests."""
RETRY_STORE_EVERY = 1.0
"""Seconds an unreachable store is left alone; in between, decisions skip it at once."""
WARN_EVERY = 30.0
"""Seconds between two warnings about an unreachable store (never one per request)."""

RESET_MARGIN = 1.0
"""Seconds before a remembered window end when the store is asked again (TTLs are whole seconds)."""
MAX_REMEMBERED_RESETS = 100_000

_STORE_ERRORS = (StorageError, ConnectionError, TimeoutError)


class Limiter(Protocol):
    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        """Count one request; raise ``RateLimited`` when over ``limit`` per window."""

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        """Where ``key`` stands, without counting a request."""


class ClosableLimiter(Limiter, Protocol):
    async def aclose(self) -> None:
        """Release connections (Redis pool); the limiter is not used afterwards."""


def _scheme(url: str) -> str:
    return url.removeprefix("async+").partition("://")[0]


class SweptMemoryStorage(MemoryStorage):
    """``limits``' in-process counters, with expired ones swept at most once a second.

    The library's own ``incr`` starts a task on every increment that walks every key
    held: with 2,000 clients in their windows, 361 µs per decision instead of ~20
    (``bench/ratelimit.py``). A counter's expiry is checked when it is incremented, as
    the library does; the sweep only frees the memory of counters nobody uses anymore.
    """

    STORAGE_SCHEME = ["async+kpihub-memory"]  # not the library's "memory", which stays its own
    SWEEP_EVERY = 1.0

    def __init__(self, uri: str | None = None, **options: Any) -> None:
        super().__init__(uri, **options)
        self._next_sweep = 0.0

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if now >= self._next_sweep:
            self.sweep(now)
        elif self.expirations.get(key, 0.0) <= now:
            self._drop(key)
        # No await from here on: the read and the write are one step of the event loop.
        self.storage[key] += amount
        if self.storage[key] == amount:
            self.expirations[key] = now + expiry
        return self.storage[key]

    def sweep(self, now: float) -> int:
        """Drop every counter whose window ended by ``now``; how many were dropped."""
        self._next_sweep = now + self.SWEEP_EVERY
        ended = [key for key, at in self.expirations.items() if at <= now]
        for key in ended:
            self._drop(key)
        return len(ended)

    def _drop(self, key: str) -> None:
        self.storage.pop(key, None)
        self.expirations.pop(key, None)
        self.locks.pop(key, None)


class LimitsLimiter:
    """``Limiter`` on the ``limits`` library; ``window`` seconds per window.

    On Redis, an unreachable or too slow server raises ``StoreUnavailable``.
    """

    def __init__(
        self,
        storage_url: str = "memory://",
        *,
        window: int = 60,
        key_prefix: str = "kpihub",
        timeout: float = REDIS_TIMEOUT,
    ) -> None:
        url = storage_url.removeprefix("async+")
        options: dict[str, Any] = {}
        if _scheme(url) in REDIS_SCHEMES:
            options = {
                "implementation": "redispy",
                "wrap_exceptions": True,
                "key_prefix": key_prefix,
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
                # One immediate retry on a fresh connection: a pooled connection may be
                # stale after Redis restarted. redis-py's default backs off for seconds.
                "retry": Retry(NoBackoff(), 1),
            }
        if _scheme(url) == "memory":
            self._storage: AsyncStorage = SweptMemoryStorage()
        else:
            self._storage = cast(AsyncStorage, storage_from_string("async+" + url, **options))
        self._window = window
        self._items: dict[int, RateLimitItem] = {}
        self._resets: dict[str, float] = {}  # storage key -> when its window ends (epoch)

    def _item(self, limit: int) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerSecond(limit, self._window)
        return item

    def _state(self, namespace: str, limit: int, used: int, expires: float) -> LimitState:
        return LimitState(
            limit=limit,
            remaining=max(limit - used, 0),
            reset_at=math.ceil(expires) if expires else int(time.time()) + self._window,
            window=self._window,
            policy=namespace,
        )

    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        item = self._item(limit)
        storage_key = item.key_for(namespace, key)
        # One round trip to Redis per decision: the count comes from the increment
        # itself (what the fixed-window strategy compares), and the window's end is
        # known when this increment opened it, or asked once and then remembered.
        try:
            used = await self._storage.incr(storage_key, item.get_expiry())
            now = time.time()
            if used == 1:
                expires = self._resets[storage_key] = now + self._window
            else:
                expires = self._resets.get(storage_key, 0.0)
                # Redis reports whole seconds: ask again near the end rather than
                # announce the end of a window another node has already replaced.
                if expires - RESET_MARGIN <= now:
                    expires = self._resets[storage_key] = await self._storage.get_expiry(
                        storage_key
                    )
        except _STORE_ERRORS as exc:
            raise _unavailable(exc) from exc
        if len(self._resets) > MAX_REMEMBERED_RESETS:
            self._forget_ended(now)
        state = self._state(namespace, limit, used, expires)
        if used > limit:
            raise RateLimited(state)
        return state

    def _forget_ended(self, now: float) -> None:
        self._resets = {k: end for k, end in self._resets.items() if end > now}

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        storage_key = self._item(limit).key_for(namespace, key)
        try:
            used = await self._storage.get(storage_key)
            expires = await self._storage.get_expiry(storage_key)
        except _STORE_ERRORS as exc:
            raise _unavailable(exc) from exc
        return self._state(namespace, limit, used, expires)

    async def aclose(self) -> None:
        bridge = getattr(self._storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()  # the client made its pool, so this closes the pool


def _unavailable(exc: BaseException) -> StoreUnavailable:
    cause = getattr(exc, "storage_error", exc)
    return StoreUnavailable(
        f"The rate-limit store cannot be reached ({type(cause).__name__}: {cause})."
    )


class FallbackLimiter:
    """``primary`` (the shared store) while it answers; ``policy`` decides when it cannot.

    ``open``: decide from ``fallback`` (this node's memory), so limits hold per node
    only; ``closed``: raise ``StoreUnavailable``. After a failure the store is left
    alone for ``retry_every`` seconds, then one request probes it; once it answers,
    decisions go back to it. Warnings are logged at most every ``warn_every`` seconds.
    """

    def __init__(
        self,
        primary: ClosableLimiter,
        fallback: ClosableLimiter,
        policy: FailurePolicy,
        *,
        on_fallback: Callable[[], object] | None = None,
        retry_every: float = RETRY_STORE_EVERY,
        warn_every: float = WARN_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._policy = policy
        self._on_fallback = on_fallback
        self._retry_every = retry_every
        self._warn_every = warn_every
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._last_error = ""
        self._warned_at = -math.inf
        self._unreported = 0  # decisions without the store since the last warning

    @property
    def store_down(self) -> bool:
        return self._down_since is not None

    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        return await self._decide(True, namespace, key, limit)

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        return await self._decide(False, namespace, key, limit)

    async def _decide(self, count: bool, namespace: str, key: str, limit: int) -> LimitState:
        probe = False
        if self._down_since is not None:
            if self._probing or self._clock() < self._retry_at:
                return await self._without_store(count, namespace, key, limit)
            probe = self._probing = True
        primary = self._primary
        try:
            state = await (primary.hit if count else primary.peek)(namespace, key, limit)
        except RateLimited:
            self._store_answered()
            raise
        except StoreUnavailable as exc:
            now = self._clock()
            self._retry_at = now + self._retry_every
            if self._down_since is None:
                self._down_since = now
            self._last_error = exc.message
            return await self._without_store(count, namespace, key, limit)
        finally:
            if probe:
                self._probing = False
        self._store_answered()
        return state

    async def _without_store(self, count: bool, namespace: str, key: str, limit: int) -> LimitState:
        self._warn()
        if self._policy == "closed":
            raise StoreUnavailable(
                "The rate-limit store cannot be reached and this server refuses requests "
                "until it is back (failure policy 'closed'). Retry after the number of "
                "seconds in Retry-After."
            )
        if self._on_fallback is not None:
            self._on_fallback()
        fallback = self._fallback
        return await (fallback.hit if count else fallback.peek)(namespace, key, limit)

    def _warn(self) -> None:
        self._unreported += 1
        now = self._clock()
        if now - self._warned_at < self._warn_every:
            return
        action = (
            "deciding from this node's memory, so limits hold per node only"
            if self._policy == "open"
            else "refusing requests with 503"
        )
        log.warning(
            "%s Policy %r: %s until it is back (%d decision(s) since the last warning).",
            self._last_error,
            self._policy,
            action,
            self._unreported,
        )
        self._warned_at = now
        self._unreported = 0

    def _store_answered(self) -> None:
        if self._down_since is None:
            return
        log.warning(
            "The rate-limit store answers again after %.1f s; shared limits are back.",
            self._clock() - self._down_since,
        )
        self._down_since = None
        self._warned_at = -math.inf
        self._unreported = 0

    async def aclose(self) -> None:
        await self._primary.aclose()
        await self._fallback.aclose()


class MeteredLimiter:
    """Reports every refusal by limit name to ``on_limited`` (a metrics counter)."""

    def __init__(self, inner: ClosableLimiter, on_limited: Callable[[str], object]) -> None:
        self._inner = inner
        self._on_limited = on_limited

    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        try:
            return await self._inner.hit(namespace, key, limit)
        except RateLimited:
            self._on_limited(namespace)
            raise

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        return await self._inner.peek(namespace, key, limit)

    async def aclose(self) -> None:
        await self._inner.aclose()


def build_limiter(settings: Settings, metrics: Metrics | None = None) -> ClosableLimiter:
    """Every limiter of the app, from ``KPIHUB_REDIS_URL`` and its failure policy."""
    window = settings.rate_limit_window
    limiter: ClosableLimiter = LimitsLimiter("memory://", window=window)
    if _scheme(settings.redis_url) in REDIS_SCHEMES:
        shared = LimitsLimiter(
            settings.redis_url, window=window, key_prefix=settings.redis_key_prefix
        )
        limiter = FallbackLimiter(
            shared,
            limiter,
            settings.redis_failure_policy,
            on_fallback=metrics.ratelimit_fallbacks.inc if metrics is not None else None,
        )
    if metrics is not None:
        counter = metrics.ratelimited
        limiter = MeteredLimiter(limiter, lambda name: counter.labels(name).inc())
    return limiter


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
