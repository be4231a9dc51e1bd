"""A retention purge beside ingestion: does deleting in chunks keep writes flowing?

    python -m bench.purge [--backend sqlite|postgres|both] [--points 400000]

One tenant, ``--points`` points in four (context, KPI) groups, timestamps spread over
400 days. Through the real store (``Storage``, as the server's housekeeping uses it),
ingestion of 10-element batches runs from 4 tasks while nothing else happens
(baseline), then while the purge deletes the oldest quarter in chunks of 1000 (as
shipped), then while it deletes the next quarter in one piece per group (chunk =
everything: what the chunks avoid). Prints each phase's batch latencies and the
purge's rate. Target: the largest ingestion latency during the chunked purge stays
under 250 ms; on SQLite (one writer: an unchunked delete holds the write lock for
its whole length) also under the unchunked purge's. On PostgreSQL a delete does not
block inserts of other rows; there the chunks keep each transaction short (locks,
WAL, what autovacuum can reclaim) and the figures show they cost ingestion nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import psycopg

from bench.common import empty_ack
from kpihub.domain import (
    BatchWrite,
    DataPoint,
    Environment,
    NewClient,
    ParsedBatch,
    PurgeCounts,
)
from kpihub.settings import Settings
from kpihub.storage import Storage, open_storage
from kpihub.storage.migrate import upgrade

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DAY = 86_400
NOW = 1_800_000_000
GROUPS = [("sales", "revenue"), ("sales", "bonus"), ("hr", "hours"), ("hr", "absence")]
WRITERS = 4
TARGET_MAX_MS = 250.0


def _write(
    tenant_id: int, client_pk: int, batch_id: str, context: str, points: list[DataPoint]
) -> BatchWrite:
    return BatchWrite(
        batch_id=batch_id,
        tenant_id=tenant_id,
        environment=Environment.PRODUCTION,
        client_pk=client_pk,
        batch=ParsedBatch("bench-pos", "1.0.0", context, points),
        raw_body=b"raw",
        received_at=float(NOW),
    )


async def seed(store: Storage, tenant_id: int, client_pk: int, points: int) -> None:
    per_group = points // len(GROUPS)
    span = 400 * DAY
    for context, kpi in GROUPS:
        for start in range(0, per_group, 10_000):
            batch = [
                DataPoint(
                    f"{kpi}-{i}",
                    kpi,
                    "number",
                    float(i),
                    None,
                    NOW - span + i * span // per_group,
                    None,
                    None,
                    f"u{i % 500}",
                    None,
                )
                for i in range(start, min(per_group, start + 10_000))
            ]
            await store.ingest(
                _write(tenant_id, client_pk, uuid.uuid4().hex, context, batch), empty_ack
            )


async def writers(
    store: Storage, tenant_id: int, client_pk: int, until: Awaitable[object] | float
) -> list[float]:
    """Ingestion latencies (ms) of 10-element batches from WRITERS tasks, until ``until``
    (a task to wait for, or seconds)."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def writer(n: int) -> None:
        seq = 0
        while not done.is_set():
            points = [
                DataPoint(
                    f"new-{n}-{seq}-{i}",
                    "revenue",
                    "number",
                    1.0,
                    None,
                    NOW,
                    None,
                    None,
                    "u1",
                    None,
                )
                for i in range(10)
            ]
            started = time.perf_counter()
            await store.ingest(
                _write(tenant_id, client_pk, uuid.uuid4().hex, "sales", points), empty_ack
            )
            latencies.append((time.perf_counter() - started) * 1000)
            seq += 1

    tasks = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    if isinstance(until, float):
        await asyncio.sleep(until)
    else:
        await until
    done.set()
    await asyncio.gather(*tasks)
    return latencies


def figures(name: str, latencies: list[float]) -> float:
    values = sorted(latencies)
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    print(
        f"  {name:<28} batches {len(values):>6}  p50 {statistics.median(values):7.1f} ms"
        f"  p99 {p99:7.1f} ms  max {values[-1]:7.1f} ms"
    )
    return values[-1]


@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'purge.db'}"
        return
    name = f"kpihub_bench_purge_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench(backend: str, points: int) -> bool:
    async with database(backend) as url:
        upgrade(url)
        store = open_storage(Settings(database_url=url, sqlite_synchronous="normal"))
        await store.start()
        try:
            tenant = await store.create_tenant("bench", "UTC", NOW)
            client = await store.create_client(
                NewClient(
                    tenant.id,
                    Environment.PRODUCTION,
                    "bench",
                    "bench-client",
                    b"\0" * 32,
                    ("kpi:write",),
                    None,
                    None,
                    NOW,
                )
            )
            started = time.perf_counter()
            await seed(store, tenant.id, client.id, points)
            print(f"{backend}: {points} points seeded in {time.perf_counter() - started:.1f} s")
            figures("ingestion alone", await writers(store, tenant.id, client.id, 3.0))
            maxima = {}
            for label, cutoff, chunk in (
                ("during chunked purge", NOW - 300 * DAY, 1000),
                ("during unchunked purge", NOW - 200 * DAY, 10**9),
            ):
                began = time.perf_counter()
                purge: asyncio.Task[PurgeCounts] = asyncio.create_task(
                    store.purge_before(tenant.id, cutoff, chunk=chunk)
                )
                maxima[label] = figures(label, await writers(store, tenant.id, client.id, purge))
                took = time.perf_counter() - began
                deleted = purge.result().points
                print(
                    f"  {'':<28} purge: {deleted} points in {took:.1f} s ({deleted / took:,.0f}/s)"
                )
        finally:
            await store.close()
    chunked, whole = maxima["during chunked purge"], maxima["during unchunked purge"]
    ok = chunked < TARGET_MAX_MS and (backend != "sqlite" or chunked < whole)
    target = f"max < {TARGET_MAX_MS:.0f} ms" + (
        " and below unchunked" if backend == "sqlite" else ""
    )
    print(
        f"  max latency chunked / unchunked: {chunked:.1f} / {whole:.1f} ms "
        f"(ratio {chunked / whole:.2f}); target {target}: {'met' if ok else 'MISSED'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--points", type=int, default=400_000)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [asyncio.run(bench(b, args.points)) for b in backends]
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
