"""``FallbackLimiter`` with fakes: when it asks the store, and when it says so."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kpihub.errors import LimitState, RateLimited, StoreUnavailable
from kpihub.ratelimit import FallbackLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLimiter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.calls = 0
        self.refuse = False

    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        self.calls += 1
        if self.down:
            raise StoreUnavailable(f"{self.name} cannot be reached.")
        state = LimitState(limit, limit - 1, 0, 60, namespace)
        if self.refuse:
            raise RateLimited(state)
        return state

    async def peek(self, namespace: str, key: str, limit: int) -> LimitState:
        return await self.hit(namespace, key, limit)

    async def aclose(self) -> None:
        pass


def make(
    policy: str = "open",
) -> tuple[FallbackLimiter, FakeLimiter, FakeLimiter, FakeClock, list[int]]:
    primary, fallback, clock = FakeLimiter("redis"), FakeLimiter("memory"), FakeClock()
    fallbacks: list[int] = []
    limiter = FallbackLimiter(
        primary,
        fallback,
        policy,  # type: ignore[arg-type]
        on_fallback=lambda: fallbacks.append(1),
        retry_every=1.0,
        warn_every=30.0,
        clock=clock,
    )
    return limiter, primary, fallback, clock, fallbacks


def test_store_left_alone_between_retries_then_used_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="kpihub.ratelimit")
    limiter, primary, fallback, clock, fallbacks = make()

    async def scenario() -> None:
        await limiter.hit("api", "k", 10)
        assert (primary.calls, fallback.calls) == (1, 0)
        primary.down = True
        for _ in range(5):
            await limiter.hit("api", "k", 10)
        # One failed try, then four decisions straight from memory.
        assert (primary.calls, fallback.calls) == (2, 5)
        clock.now += 1.5
        await limiter.hit("api", "k", 10)  # one probe, still down
        assert (primary.calls, fallback.calls) == (3, 6)
        primary.down = False
        await limiter.hit("api", "k", 10)  # within retry_every: not asked yet
        assert primary.calls == 3
        clock.now += 1.5
        await limiter.hit("api", "k", 10)
        await limiter.hit("api", "k", 10)
        assert (primary.calls, fallback.calls) == (5, 7)
        assert not limiter.store_down

    asyncio.run(scenario())
    assert len(fallbacks) == 7
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # one warning for the outage, one when it is back
    assert "redis cannot be reached" in messages[0]
    assert "answers again" in messages[1]


def test_warnings_repeat_at_most_every_30_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kpihub.ratelimit")
    limiter, primary, _, clock, _ = make()
    primary.down = True

    async def scenario() -> None:
        for _ in range(100):
            clock.now += 0.5
            await limiter.hit("api", "k", 10)

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # at 0 s and 30 s of a 50 s outage
    assert "(60 decision(s) since the last warning)" in messages[1]


def test_closed_policy_refuses_without_touching_memory() -> None:
    limiter, primary, fallback, clock, fallbacks = make("closed")
    primary.down = True

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(StoreUnavailable, match="failure policy 'closed'"):
                await limiter.hit("api", "k", 10)
            clock.now += 0.1

    asyncio.run(scenario())
    assert fallback.calls == 0
    assert fallbacks == []
    assert primary.calls == 1


def test_a_refusal_from_the_store_is_a_refusal_and_proves_it_is_back() -> None:
    limiter, primary, fallback, clock, _ = make()

    async def scenario() -> None:
        primary.down = True
        await limiter.hit("api", "k", 10)
        primary.down, primary.refuse = False, True
        clock.now += 2
        with pytest.raises(RateLimited):
            await limiter.hit("api", "k", 10)
        assert not limiter.store_down

    asyncio.run(scenario())
    assert fallback.calls == 1


class SlowDown(FakeLimiter):
    async def hit(self, namespace: str, key: str, limit: int) -> LimitState:
        self.calls += 1
        await asyncio.sleep(0.01)
        raise StoreUnavailable("redis cannot be reached.")


def test_only_one_request_probes_a_down_store() -> None:
    slow, fallback, clock = SlowDown("redis"), FakeLimiter("memory"), FakeClock()
    limiter = FallbackLimiter(slow, fallback, "open", retry_every=1.0, clock=clock)

    async def scenario() -> None:
        await limiter.hit("api", "k", 10)
        clock.now += 2
        await asyncio.gather(*(limiter.hit("api", "k", 10) for _ in range(10)))

    asyncio.run(scenario())
    assert slow.calls == 2  # the first failure and one probe, not eleven tries
    assert fallback.calls == 11
