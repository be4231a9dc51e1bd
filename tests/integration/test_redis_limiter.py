"""Rate limits on a real Redis: shared by nodes, isolated by prefix, and what happens
when Redis cannot be reached (``KPIHUB_REDIS_FAILURE_POLICY``)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from kpihub.errors import LimitState, RateLimited, StoreUnavailable
from kpihub.metrics import Metrics
from kpihub.ratelimit import ClosableLimiter, FallbackLimiter, LimitsLimiter, build_limiter
from kpihub.settings import Settings
from tests.redis_server import (
    DEAD_REDIS_URL,
    PrivateRedis,
    delete_prefix,
    keys_under,
    unique_prefix,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def opened(limiter: ClosableLimiter) -> AsyncIterator[ClosableLimiter]:
    try:
        yield limiter
    finally:
        await limiter.aclose()


def settings_for(url: str, prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"redis_url": url, "redis_key_prefix": prefix}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_two_nodes_share_one_budget(redis_url: str, prefix: str) -> None:
    node_a = LimitsLimiter(redis_url, window=60, key_prefix=prefix)
    node_b = LimitsLimiter(redis_url, window=60, key_prefix=prefix)
    async with opened(node_a), opened(node_b):
        states: list[LimitState] = []
        for sent in range(180):
            node = node_a if sent % 2 else node_b
            states.append(await node.hit("api", "client-1", 180))
        assert [s.remaining for s in states] == list(range(179, -1, -1))
        # Both nodes announce the same end of the window (Redis TTLs are whole seconds).
        assert max(s.reset_at for s in states) - min(s.reset_at for s in states) <= 1
        assert all(s.limit == 180 and s.window == 60 and s.policy == "api" for s in states)
        for node in (node_a, node_b):
            with pytest.raises(RateLimited) as refused:
                await node.hit("api", "client-1", 180)
            assert refused.value.state.remaining == 0
            assert time.time() < refused.value.state.reset_at <= time.time() + 61
        # Another client has its own budget; a peek counts nothing.
        assert (await node_a.hit("api", "client-2", 180)).remaining == 179
        assert (await node_b.peek("api", "client-2", 180)).remaining == 179
    assert keys_under(prefix, redis_url), "the counters must live in Redis"


async def test_prefixes_are_isolated(redis_url: str, prefix: str) -> None:
    other = unique_prefix()
    first = LimitsLimiter(redis_url, window=60, key_prefix=prefix)
    second = LimitsLimiter(redis_url, window=60, key_prefix=other)
    try:
        async with opened(first), opened(second):
            for _ in range(3):
                await first.hit("api", "client-1", 3)
            with pytest.raises(RateLimited):
                await first.hit("api", "client-1", 3)
            assert (await second.hit("api", "client-1", 3)).remaining == 2
    finally:
        delete_prefix(other, redis_url)


async def test_the_window_resets(redis_url: str, prefix: str) -> None:
    async with opened(LimitsLimiter(redis_url, window=1, key_prefix=prefix)) as limiter:
        await limiter.hit("api", "client-1", 2)
        await limiter.hit("api", "client-1", 2)
        with pytest.raises(RateLimited) as refused:
            await limiter.hit("api", "client-1", 2)
        await anyio.sleep(max(0.0, refused.value.state.reset_at - time.time()) + 0.2)
        again = await limiter.hit("api", "client-1", 2)
        assert again.remaining == 1


async def test_open_policy_decides_from_memory_when_redis_is_down(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    settings = settings_for(DEAD_REDIS_URL, prefix, redis_failure_policy="open")
    caplog.set_level(logging.WARNING, logger="kpihub.ratelimit")
    started = time.monotonic()
    async with opened(build_limiter(settings, metrics)) as limiter:
        states = [await limiter.hit("api", "client-1", 3) for _ in range(3)]
        assert [s.remaining for s in states] == [2, 1, 0]
        with pytest.raises(RateLimited) as refused:
            await limiter.hit("api", "client-1", 3)
        assert refused.value.state.remaining == 0
        assert (await limiter.hit("api", "client-2", 3)).remaining == 2
    assert time.monotonic() - started < 1.0, "a dead Redis must not stall decisions"
    registry = metrics.registry
    assert registry.get_sample_value("kpihub_ratelimit_fallbacks_total") == 5.0
    assert registry.get_sample_value("kpihub_ratelimited_total", {"limit": "api"}) == 1.0
    warnings = [r for r in caplog.records if r.name == "kpihub.ratelimit"]
    assert len(warnings) == 1, "one warning per outage, not one per request"
    assert "cannot be reached" in warnings[0].getMessage()
    assert "open" in warnings[0].getMessage()


async def test_closed_policy_refuses_quickly_when_redis_is_down(prefix: str) -> None:
    metrics = Metrics()
    settings = settings_for(DEAD_REDIS_URL, prefix, redis_failure_policy="closed")
    async with opened(build_limiter(settings, metrics)) as limiter:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as refused:
                await limiter.hit("api", "client-1", 180)
            assert time.monotonic() - started < 1.0
            assert "rate-limit store cannot be reached" in refused.value.message
            assert "closed" in refused.value.message
    assert metrics.registry.get_sample_value("kpihub_ratelimit_fallbacks_total") == 0.0


async def test_decisions_go_back_to_redis_when_it_returns(
    prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops and starts again under a running limiter: no restart is needed."""
    server = PrivateRedis(tmp_path).start()
    url = server.url
    metrics = Metrics()
    caplog.set_level(logging.WARNING, logger="kpihub.ratelimit")
    try:
        shared = LimitsLimiter(url, window=60, key_prefix=prefix)
        limiter = FallbackLimiter(
            shared,
            LimitsLimiter("memory://", window=60),
            "open",
            on_fallback=metrics.ratelimit_fallbacks.inc,
            retry_every=0.2,
        )
        async with opened(limiter):
            assert (await limiter.hit("api", "c", 100)).remaining == 99
            server.stop()
            # Redis lost its counters with the process; memory counts from scratch.
            assert (await limiter.hit("api", "c", 100)).remaining == 99
            assert limiter.store_down
            server.start()
            await anyio.sleep(0.3)
            assert (await limiter.hit("api", "c", 100)).remaining == 99  # fresh Redis
            assert not limiter.store_down
            assert (await limiter.hit("api", "c", 100)).remaining == 98
            assert keys_under(prefix, url)
    finally:
        server.stop()
    assert metrics.registry.get_sample_value("kpihub_ratelimit_fallbacks_total") == 1.0
    messages = [r.getMessage() for r in caplog.records if r.name == "kpihub.ratelimit"]
    assert len(messages) == 2
    assert "answers again" in messages[1]
