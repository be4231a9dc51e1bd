"""Ingestion throughput, latency and memory of one ``kpihub serve`` on SQLite.

    python -m bench.ingest [--seconds 10] [--runs 3] [--concurrency 8] [--batch 100]

Starts a real server on a temporary SQLite database with default settings (durable
commits: ``synchronous=full``), sends distinct batches (every element is new) from
``--concurrency`` keep-alive connections, and prints elements/s acknowledged, request
latency percentiles, and the server's peak RSS while it ingests a ~10 MB body.
Targets: >= 30,000 elements/s, p99 < 50 ms, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    Tenant,
    exchange,
    kpi_request,
    kpihub_env,
    load,
    median,
    postgres_database,
    serve,
    serve_many,
    setup_tenant,
    token,
)

# Elements/s acknowledged by one node, per store.
TARGETS = {"sqlite": 30_000, "postgres": 20_000}
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 200.0
KPIS = ("device_sales", "bonuses", "points", "profit", "experience")


FEED_START = datetime(2026, 10, 1, tzinfo=UTC)


def stamp_for(batch: int, rng: random.Random, timestamps: str) -> str:
    """A 'Y-m-d H:i:s' time for an element of batch number ``batch``.

    ``live``: a feed sending what just happened: times advance with the batch number
    (one batch every 6 s of feed time), each up to 10 minutes old. ``backfill``: a
    vendor loading history: times anywhere in one month, in no order.
    """
    if timestamps == "live":
        moment = FEED_START + timedelta(seconds=batch * 6 - rng.randrange(600))
    else:
        moment = FEED_START + timedelta(seconds=rng.randrange(28 * 86_400))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def batch_body(
    tenant: Tenant, batch: int, size: int, rng: random.Random, timestamps: str = "live"
) -> bytes:
    """One article-shaped batch; element ids are unique across batches."""
    data = []
    per_user = 10
    for start in range(0, size, per_user):
        stamp = stamp_for(batch, rng, timestamps)
        data.append(
            {
                "user_id": str(rng.randrange(5000)),
                "location_id": str(rng.randrange(300)),
                "elements": [
                    {
                        "id": f"{batch}-{start + j}",
                        "kpi": KPIS[(start + j) % len(KPIS)],
                        "object_type": "number",
                        "value": f"{rng.uniform(0, 1000):.2f}",
                        "units": "Eur",
                        "timestamp": stamp,
                        "date_from": stamp,
                        "date_to": stamp,
                    }
                    for j in range(min(per_user, size - start))
                ],
            }
        )
    doc = {"type": tenant.integration, "version": "1.0.0", "context": "sales", "data": data}
    return json.dumps(doc).encode()


def large_body(tenant: Tenant, target_bytes: int, elements: int) -> bytes:
    """A body of about ``target_bytes`` with ``elements`` elements: long (<= 255) strings."""
    base = json.dumps(_large_doc(tenant, elements, 0)).encode()
    # Four padded strings per element; grow them evenly to reach the target size.
    pad = min(230, max(0, (target_bytes - len(base)) // (4 * elements)))
    return json.dumps(_large_doc(tenant, elements, pad)).encode()


def _large_doc(tenant: Tenant, elements: int, pad: int) -> dict[str, object]:
    fill = "x" * pad
    data = [
        {
            "user_id": f"user-{i % 997}-{fill}",
            "location_id": f"store-{i % 101}-{fill}",
            "elements": [
                {
                    "id": f"big-{i}",
                    "kpi": f"device_sales_{fill}",
                    "object_type": "number",
                    "value": str(i),
                    "units": f"Devices sold {fill}",
                    "timestamp": "2026-10-01 12:00:00",
                    "date_from": "2026-10-01 00:00:00",
                    "date_to": "2026-10-01 23:59:59",
                }
            ],
        }
        for i in range(elements)
    ]
    return {"type": tenant.integration, "version": "1.0.0", "context": "sales", "data": data}


async def send_one(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await exchange(reader, writer, request)
    finally:
        writer.close()


def throughput(args: argparse.Namespace, env: dict[str, str], tenant: Tenant) -> dict[str, float]:
    rng = random.Random(42)
    figures: dict[str, list[float]] = {
        "elements_per_s": [],
        "p50_ms": [],
        "p99_ms": [],
        "errors": [],
    }
    with serve_many(env, args.nodes) as servers:
        ports = [server.port for server in servers]
        access = token(ports[0], tenant)
        next_batch = 0
        for run in range(args.runs + 1):  # run 0 warms up
            count = int(args.seconds * 600) + 50
            requests = [
                kpi_request(
                    tenant,
                    access,
                    batch_body(tenant, next_batch + i, args.batch, rng, args.timestamps),
                )
                for i in range(count)
            ]
            next_batch += count
            result = asyncio.run(
                load(
                    ports,
                    requests,
                    args.batch,
                    args.concurrency,
                    args.seconds if run else 2.0,
                )
            )
            if run == 0:
                continue
            print(
                f"  run {run}: {result.elements_per_s:,.0f} elements/s, "
                f"{result.requests / result.seconds:,.0f} requests/s, "
                f"p50 {result.percentile(0.5):.1f} ms, p99 {result.percentile(0.99):.1f} ms, "
                f"errors {result.errors}"
            )
            figures["elements_per_s"].append(result.elements_per_s)
            figures["p50_ms"].append(result.percentile(0.5))
            figures["p99_ms"].append(result.percentile(0.99))
            figures["errors"].append(result.errors)
    return {name: median(values) for name, values in figures.items()}


def memory(env: dict[str, str], tenant: Tenant) -> dict[str, float]:
    body = large_body(tenant, 10 * 1024 * 1024, 10_000)
    with serve(env) as server:
        access = token(server.port, tenant)
        before = server.rss_kib("VmRSS") / 1024
        status, ack = asyncio.run(send_one(server.port, kpi_request(tenant, access, body)))
        if status != 200:
            raise SystemExit(f"10 MB body refused: {status} {ack[:300]!r}")
        peak = server.rss_kib("VmHWM") / 1024
        writer = server.writer_pid()
        writer_peak = server.rss_kib("VmHWM", writer) / 1024 if writer else 0.0
    return {
        "body_mb": len(body) / 1024 / 1024,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "writer_peak_rss_mb": writer_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin connection; the bench creates and drops its own database",
    )
    parser.add_argument("--nodes", type=int, default=1, help="server processes sharing the load")
    parser.add_argument("--redis-url", default="memory://")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 10 MB body run")
    parser.add_argument(
        "--timestamps",
        choices=("live", "backfill"),
        default="live",
        help="live: times advance as in a live feed; backfill: random times in a month",
    )
    args = parser.parse_args()

    target = TARGETS[args.backend]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kpihub-bench-")))
        database_url = None
        if args.backend == "postgres":
            database_url = stack.enter_context(postgres_database(args.postgres_url))
        env = kpihub_env(
            tmp,
            database_url,
            sqlite_synchronous=args.synchronous,
            redis_url=args.redis_url,
        )
        tenant = setup_tenant(env)
        store = (
            f"SQLite synchronous={args.synchronous}"
            if args.backend == "sqlite"
            else "PostgreSQL (synchronous_commit on)"
        )
        print(
            f"Ingestion: {args.concurrency} clients, {args.batch}-element batches, "
            f"{args.runs} runs of {args.seconds:g} s, {store}, {args.nodes} node(s), "
            f"{args.timestamps} timestamps"
        )
        t = throughput(args, env, tenant)
        m = None if args.skip_memory else memory(env, tenant)

    ratio = t["elements_per_s"] / target
    print()
    print(
        f"median elements/s acknowledged : {t['elements_per_s']:,.0f} "
        f"(target {target:,}; ratio {ratio:.2f})"
    )
    print(f"median p50 latency             : {t['p50_ms']:.1f} ms")
    print(f"median p99 latency             : {t['p99_ms']:.1f} ms (target < {TARGET_P99_MS:g} ms)")
    print(f"errors (median per run)        : {t['errors']:.0f}")
    if m is not None:
        print(
            f"10 MB body: {m['body_mb']:.1f} MB, RSS before {m['rss_before_mb']:.0f} MB, "
            f"peak RSS {m['peak_rss_mb']:.0f} MB (target < {TARGET_RSS_MB:g} MB); "
            f"its SQLite writer process {m['writer_peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
