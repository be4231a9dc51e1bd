"""The paths around ingestion: token endpoint, bearer check + throttle, a 10 MB body.

    python -m bench.paths [--seconds 5] [--runs 3] [--concurrency 8] [--checks 20000]

- **Token endpoint**: one ``kpihub serve`` (SQLite, defaults but for the token limits,
  raised so that the bench measures issuing, not refusing), ``--concurrency``
  keep-alive connections posting the article's form (``grant-type`` and all) for
  ``--seconds``; tokens/s counts 200 answers. Target >= 2,000 tokens/s.
- **Bearer verification + rate-limit decision, in process**: ``authenticate()`` as a
  route calls it, on the app's own services (signing keys, SQLite store, in-memory
  limiter) with a real request object carrying a real token; the signature check,
  the one store read (tenant, client, revocation) and the limit decision, timed one
  call after another. Target <= 100 µs per request (median).
- **A 10 MB body**: a fresh server receives one ~10 MB batch (10,000 elements);
  the server's peak RSS (``VmHWM``). Target < 200 MB.

Prints medians of ``--runs`` and exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.requests import Request

from bench.common import (
    Tenant,
    kpihub_env,
    load,
    median,
    serve,
    setup_tenant,
    token,
    token_request,
)
from bench.ingest import memory
from kpihub.app import create_app
from kpihub.domain import SCOPE_WRITE
from kpihub.oauth.bearer import authenticate
from kpihub.services import Services
from kpihub.settings import Settings

TARGET_TOKENS_PER_S = 2_000
TARGET_CHECK_US = 100.0
TARGET_RSS_MB = 200.0
HIGH_LIMIT = "100000000"


def tokens_per_second(env: dict[str, str], tenant: Tenant, args: argparse.Namespace) -> float:
    with serve(env) as server:
        requests = [token_request(tenant, article=True)]
        asyncio.run(load([server.port], requests, 1, args.concurrency, 1.0))  # warm-up
        rates = []
        for run in range(1, args.runs + 1):
            result = asyncio.run(load([server.port], requests, 1, args.concurrency, args.seconds))
            if result.errors:
                raise SystemExit(f"token endpoint: {result.errors} failed requests")
            rates.append(result.elements_per_s)
            print(
                f"  token run {run}: {result.elements_per_s:,.0f} tokens/s, "
                f"p50 {result.percentile(0.5):.2f} ms, p99 {result.percentile(0.99):.2f} ms"
            )
    return median(rates)


def _request(tenant: Tenant, access_token: str, app: object) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/external/v1/kpi",
        "query_string": b"",
        "headers": [
            (b"host", f"{tenant.name}.localhost".encode()),
            (b"authorization", f"Bearer {access_token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "app": app,
    }
    return Request(scope)


async def _checks(env: dict[str, str], tenant: Tenant, access: str, count: int) -> list[float]:
    settings = Settings(
        database_url=env["KPIHUB_DATABASE_URL"],
        secret_key_file=Path(env["KPIHUB_SECRET_KEY_FILE"]),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        svc: Services = app.state.services
        times = []
        for _ in range(count):
            request = _request(tenant, access, app)  # a new request each time, as served
            started = time.perf_counter()
            await authenticate(svc, request, SCOPE_WRITE)
            times.append(time.perf_counter() - started)
    return times


def check_microseconds(
    env: dict[str, str], tenant: Tenant, access: str, args: argparse.Namespace
) -> float:
    medians = []
    for run in range(1, args.runs + 1):
        times = asyncio.run(_checks(env, tenant, access, args.checks))
        us = [t * 1e6 for t in times[len(times) // 10 :]]  # the first tenth warms up
        medians.append(statistics.median(us))
        ordered = sorted(us)
        print(
            f"  check run {run}: median {medians[-1]:.1f} µs, "
            f"p99 {ordered[int(0.99 * len(ordered))]:.1f} µs over {len(us):,} calls"
        )
    return median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--checks", type=int, default=20_000, help="authenticate() calls per run")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 10 MB body")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kpihub-paths-") as tmp:
        env = kpihub_env(
            Path(tmp),
            token_rate_limit_per_client=HIGH_LIMIT,
            token_rate_limit_per_address=HIGH_LIMIT,
        )
        tenant = setup_tenant(env)
        print(f"Token endpoint: {args.concurrency} connections, {args.runs} x {args.seconds:g} s")
        tokens = tokens_per_second(env, tenant, args)
        with serve(env) as server:
            access = token(server.port, tenant)
        print(f"Bearer check + throttle in process: {args.runs} runs of {args.checks:,} calls")
        check = check_microseconds(env, tenant, access, args)
        mem = None if args.skip_memory else memory(env, tenant)

    results = [
        (
            "token endpoint",
            f"{tokens:,.0f} tokens/s",
            f">= {TARGET_TOKENS_PER_S:,}",
            tokens >= TARGET_TOKENS_PER_S,
        ),
        (
            "bearer check + throttle",
            f"{check:.1f} µs",
            f"<= {TARGET_CHECK_US:g} µs",
            check <= TARGET_CHECK_US,
        ),
    ]
    if mem is not None:
        peak = mem["peak_rss_mb"]
        results.append(
            (
                f"{mem['body_mb']:.1f} MB body",
                f"peak RSS {peak:.0f} MB (before {mem['rss_before_mb']:.0f} MB; "
                f"SQLite writer process {mem['writer_peak_rss_mb']:.0f} MB)",
                f"< {TARGET_RSS_MB:g} MB",
                peak < TARGET_RSS_MB,
            )
        )
    print()
    for name, figure, target, ok in results:
        print(f"{name:<24} {figure:<36} target {target:<12} {'ok' if ok else 'MISSED'}")
    if not all(ok for *_, ok in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
