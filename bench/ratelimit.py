"""Cost of one rate-limit decision: Redis (shared by nodes) against in-process memory.

    python -m bench.ratelimit [--decisions 20000] [--concurrency 8] [--redis-url URL]

Times ``hit`` decisions through the limiter chain the app builds
(``build_limiter``: metered, with the Redis failure fallback) from one event loop,
the way a server process makes them: one after another, and from ``--concurrency``
tasks at once. Each decision is timed from the call to its answer. Counters live
under a fresh key prefix, deleted at the end. Target: Redis p99 < 2 ms.

Then the in-process storage alone, as a serving loop uses it (a turn of the event loop
between decisions, so tasks the storage starts get to run) with 1 to 2,000 clients in
their windows: ``limits``' own ``MemoryStorage`` against kpihub's ``SweptMemoryStorage``
(expired counters swept once a second instead of on every increment). Target: kpihub's
cost per decision does not grow with the clients (2,000 keys within 2x of 1 key).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import redis
from limits.aio.storage import MemoryStorage
from limits.aio.storage import Storage as AsyncStorage

from kpihub.metrics import Metrics
from kpihub.ratelimit import ClosableLimiter, SweptMemoryStorage, build_limiter
from kpihub.settings import Settings

CLIENTS = 200  # distinct keys, as many clients sending at once
LIMIT = 1_000_000_000  # never refused: every decision is a counted hit
TARGET_P99_US = 2000.0


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run(
    limiter: ClosableLimiter, decisions: int, concurrency: int
) -> tuple[list[float], float]:
    """Per-decision latencies (µs) and the wall time of the whole run (s)."""
    latencies: list[float] = []
    per_task = decisions // concurrency

    async def worker(offset: int) -> None:
        clock = time.perf_counter
        for i in range(per_task):
            key = f"client-{(offset + i * concurrency) % CLIENTS}"
            started = clock()
            await limiter.hit("api", key, LIMIT)
            latencies.append((clock() - started) * 1e6)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies, time.perf_counter() - started


def report(name: str, latencies: list[float], wall: float) -> dict[str, float]:
    values = sorted(latencies)
    figures = {
        "p50": percentile(values, 0.50),
        "p99": percentile(values, 0.99),
        "mean": statistics.fmean(values),
        "per_s": len(values) / wall,
    }
    print(
        f"{name:<28} p50 {figures['p50']:8.1f} µs   p99 {figures['p99']:8.1f} µs   "
        f"mean {figures['mean']:8.1f} µs   {figures['per_s']:9,.0f} decisions/s"
    )
    return figures


async def bench(args: argparse.Namespace) -> bool:
    prefix = f"kpihub-bench-{uuid.uuid4().hex}"
    metrics = Metrics()
    on_redis = build_limiter(Settings(redis_url=args.redis_url, redis_key_prefix=prefix), metrics)
    in_memory = build_limiter(Settings(redis_url="memory://"), Metrics())
    runs: list[tuple[str, ClosableLimiter, int]] = [
        ("memory, sequential", in_memory, 1),
        (f"memory, {args.concurrency} tasks", in_memory, args.concurrency),
        ("redis, sequential", on_redis, 1),
        (f"redis, {args.concurrency} tasks", on_redis, args.concurrency),
    ]
    print(
        f"Rate-limit decisions: {args.decisions:,} hits per run over {CLIENTS} keys, "
        f"one event loop ({args.loop}), Redis at {args.redis_url}"
    )
    results: dict[str, dict[str, float]] = {}
    try:
        for name, limiter, concurrency in runs:
            await run(limiter, min(2000, args.decisions), concurrency)  # warm-up
            latencies, wall = await run(limiter, args.decisions, concurrency)
            results[name] = report(name, latencies, wall)
    finally:
        await on_redis.aclose()
        await in_memory.aclose()
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    fallbacks = metrics.registry.get_sample_value("kpihub_ratelimit_fallbacks_total")
    if fallbacks:
        print(f"WARNING: {fallbacks:.0f} decisions fell back to memory: Redis did not answer")
    seq = results["redis, sequential"]
    mem = results["memory, sequential"]
    par = results[f"redis, {args.concurrency} tasks"]
    print(
        f"ratio redis/memory (sequential): p50 {seq['p50'] / mem['p50']:.1f}x, "
        f"mean {seq['mean'] / mem['mean']:.1f}x"
    )
    worst = max(seq["p99"], par["p99"])
    ok = worst < TARGET_P99_US and not fallbacks
    print(
        f"Redis p99 {worst:.0f} µs (worst of both runs): "
        f"{worst / TARGET_P99_US:.2f} of the 2 ms target -> {'OK' if ok else 'MISSED'}"
    )
    return ok


async def per_decision(storage: AsyncStorage, keys: int, decisions: int) -> float:
    """Mean µs per increment over ``keys`` live counters, a loop turn after each."""
    for k in range(keys):
        await storage.incr(f"client-{k}", 60)
    started = time.perf_counter()
    for i in range(decisions):
        await storage.incr(f"client-{i % keys}", 60)
        await asyncio.sleep(0)
    return (time.perf_counter() - started) / decisions * 1e6


async def storages(decisions: int) -> bool:
    """The library's in-process storage against kpihub's, by the number of clients."""
    print(f"In-process counters, {decisions:,} increments with a loop turn after each:")
    figures: dict[tuple[str, int], float] = {}
    for keys in (1, 200, 2000):
        for name, make in (("limits", MemoryStorage), ("kpihub", SweptMemoryStorage)):
            figures[(name, keys)] = await per_decision(make(), keys, decisions)
        print(
            f"  {keys:>5} clients: limits {figures[('limits', keys)]:7.1f} µs, "
            f"kpihub {figures[('kpihub', keys)]:6.1f} µs "
            f"({figures[('limits', keys)] / figures[('kpihub', keys)]:.1f}x)"
        )
    growth = figures[("kpihub", 2000)] / figures[("kpihub", 1)]
    ok = growth <= 2.0
    print(
        f"kpihub, 2,000 clients / 1 client: {growth:.2f} (target <= 2) -> "
        f"{'OK' if ok else 'MISSED'}"
    )
    return ok


async def everything(args: argparse.Namespace) -> bool:
    shared = await bench(args)
    print()
    local = await storages(min(args.decisions, 5000))
    return shared and local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    runner: Callable[[Coroutine[Any, Any, bool]], bool] = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    raise SystemExit(0 if runner(everything(args)) else 1)


if __name__ == "__main__":
    main()
