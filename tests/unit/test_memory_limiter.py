"""The in-process limiter: exact fixed windows, and memory freed without a walk of every
counter on every decision."""

from __future__ import annotations

import asyncio
import time

import pytest

from kpihub.errors import RateLimited
from kpihub.ratelimit import LimitsLimiter, SweptMemoryStorage

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_memory_limiter_counts_in_swept_storage_and_refuses_over_the_limit() -> None:
    limiter = LimitsLimiter("memory://", window=60)
    assert isinstance(limiter._storage, SweptMemoryStorage)
    states = [await limiter.hit("api", "client-a", 3) for _ in range(3)]
    assert [s.remaining for s in states] == [2, 1, 0]
    with pytest.raises(RateLimited):
        await limiter.hit("api", "client-a", 3)
    assert (await limiter.hit("api", "client-b", 3)).remaining == 2  # its own budget


async def test_a_counter_restarts_when_its_window_ends_between_sweeps() -> None:
    storage = SweptMemoryStorage()
    storage.SWEEP_EVERY = 3600.0  # no sweep after the first increment
    assert await storage.incr("k", 0.2) == 1
    assert await storage.incr("k", 0.2) == 2
    await asyncio.sleep(0.25)
    assert await storage.incr("k", 0.2) == 1  # a new window, counted from scratch
    assert await storage.get("k") == 1


async def test_ended_counters_of_idle_clients_are_freed_by_a_later_decision() -> None:
    storage = SweptMemoryStorage()
    storage.SWEEP_EVERY = 0.1
    for n in range(500):
        await storage.incr(f"idle-{n}", 0.05)
    await storage.incr("busy", 60)
    assert len(storage.expirations) == 501  # the sweep ran at the first increment only
    await asyncio.sleep(0.15)
    await storage.incr("busy", 60)  # the first decision after SWEEP_EVERY sweeps
    assert set(storage.expirations) == {"busy"}
    assert set(storage.storage) == {"busy"}
    assert await storage.get("busy") == 2


async def test_a_sweep_drops_exactly_the_ended_windows() -> None:
    storage = SweptMemoryStorage()
    await storage.incr("ended", 10)
    await storage.incr("live", 30)
    now = time.time()
    assert storage.sweep(now + 20) == 1
    assert set(storage.storage) == {"live"}


async def test_increments_start_no_task() -> None:
    """The library's storage starts a sweeping task per increment; this one none."""
    storage = SweptMemoryStorage()
    before = len(asyncio.all_tasks())
    for n in range(50):
        await storage.incr(f"k-{n}", 60)
    assert len(asyncio.all_tasks()) == before
