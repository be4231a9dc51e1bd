"""Query API latency on a large dataset, against the same reads done directly on the store.

    python -m bench.query [--backend sqlite|postgres|both] [--points 10000000] [--repeat 20]

Uses (or builds, see ``bench.dataset``) a cached dataset of ``--points`` points for one
tenant, starts a real ``kpihub serve`` on it, gets a token with scope ``kpi:read`` and
times, over one keep-alive HTTP/1.1 connection, after one warm-up pass:

- leaderboard: ``GET /api/external/v1/kpi/leaderboard?kpi=K&by=user_id&agg=sum``
  ``&from=T-30d&to=T&limit=10``
- series: ``GET /api/external/v1/kpi/series?kpi=K&location_id=L&agg=sum&interval=day``
  ``&from=T-90d&to=T&tz=Europe/Copenhagen``

and the same reads in this process: ``store`` = the storage method the route calls
(``leaderboard`` / ``slot_aggregates``) with the arguments the route's own parser
builds from the same query string, on a store opened as the server opens it; ``sql`` =
the statement(s) that method runs, on a plain connection (sqlite3 with the server's
``mmap_size``, asyncpg). K, L and T vary between repetitions over ``--variants`` seeded
cases, the same list for every path; each case's answer from the API is checked against
the store's.

Targets: each API median <= 150 ms; API / sql <= 1.25 (what the API adds over the same
SQL run directly on the database). Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import Tenant, exchange, median, serve, token
from bench.dataset import (
    KPIS,
    Dataset,
    Spec,
    add_spec_arguments,
    describe,
    ensure,
    spec_from,
)
from kpihub.domain import Environment, PointFilter
from kpihub.query.params import parse_leaderboard, parse_series
from kpihub.query.rollup import slot_size
from kpihub.settings import Settings
from kpihub.storage import Storage, open_storage
from kpihub.storage._sql import (
    Binder,
    contexts_sql,
    leaderboard_sql,
    needs_contexts,
    slots_sql,
    where_points,
)
from kpihub.storage._sqlite_driver import sqlite3

TARGET_MS = 150.0
TARGET_RATIO = 1.25
TZ = "Europe/Copenhagen"
QUERIES = ("leaderboard", "series")
PATHS = ("api", "store", "sql")

# As the stores build their statements: SQLite's "?" and PostgreSQL's "$n"; PostgreSQL
# compares ids in code-point order (COLLATE "C") to break ties as Python does.
MARKS: dict[str, Callable[[int], str]] = {"sqlite": lambda _: "?", "postgres": lambda n: f"${n}"}
COLLATE = {"sqlite": "", "postgres": ' COLLATE "C"'}


@dataclass(frozen=True)
class Case:
    kpi: str
    location_id: str
    end: int  # a local midnight in Europe/Copenhagen

    def params(self, query: str) -> dict[str, str]:
        if query == "leaderboard":
            return {
                "kpi": self.kpi,
                "by": "user_id",
                "agg": "sum",
                "from": str(self.end - 30 * 86_400),
                "to": str(self.end),
                "limit": "10",
            }
        return {
            "kpi": self.kpi,
            "location_id": self.location_id,
            "agg": "sum",
            "interval": "day",
            "from": str(self._local_days_before(90)),
            "to": str(self.end),
            "tz": TZ,
        }

    def _local_days_before(self, days: int) -> int:
        """The local midnight ``days`` calendar days before ``end`` (DST-aware)."""
        zone = ZoneInfo(TZ)
        end = datetime.fromtimestamp(self.end, zone)
        return int((end - timedelta(days=days)).replace(tzinfo=zone).timestamp())


def cases(spec: Spec, count: int) -> list[Case]:
    """``count`` seeded cases: a KPI, a location, a window ending 0-13 days before the end."""
    rng = random.Random(f"{spec.seed}/query-cases")
    zone = ZoneInfo(TZ)
    last = datetime.fromtimestamp(spec.end_ts, zone).date()
    out = []
    for _ in range(count):
        day = last - timedelta(days=rng.randrange(14))
        end = datetime(day.year, day.month, day.day, tzinfo=zone)
        out.append(
            Case(
                kpi=rng.choice(KPIS).name,
                location_id=spec.location_id(rng.randrange(spec.locations)),
                end=int(end.timestamp()),
            )
        )
    return out


# -- the API over HTTP ---------------------------------------------------------------


def get_request(tenant: Tenant, access_token: str, query: str, params: dict[str, str]) -> bytes:
    return (
        f"GET /api/external/v1/kpi/{query}?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
        f"Host: {tenant.name}.localhost\r\n"
        f"Authorization: Bearer {access_token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


# -- the same reads in process -------------------------------------------------------


@dataclass
class Direct:
    """The store the server would open, plus a plain connection for the raw statements."""

    backend: str
    store: Storage
    tenant_id: int
    tenant_zone: str
    sqlite: sqlite3.Connection | None = None
    postgres: Any = None  # an asyncpg connection

    async def via_store(self, query: str, params: dict[str, str]) -> Any:
        multi = {k: [v] for k, v in params.items()}
        env = Environment.PRODUCTION
        if query == "leaderboard":
            lq = parse_leaderboard(
                multi, tenant_id=self.tenant_id, environment=env, zone=ZoneInfo(self.tenant_zone)
            )
            return await self.store.leaderboard(lq.filter, by=lq.by, agg=lq.agg, limit=lq.limit)
        sq = parse_series(
            multi, tenant_id=self.tenant_id, environment=env, tenant_zone=self.tenant_zone
        )
        return await self.store.slot_aggregates(
            sq.filter,
            slot=slot_size(sq.boundaries),
            group_by=sq.group_by,
            with_last=sq.agg == "last",
        )

    def statements(self, query: str, params: dict[str, str]) -> tuple[PointFilter, Any]:
        """The filter and a builder of the main statement, as the store makes them."""
        multi = {k: [v] for k, v in params.items()}
        env = Environment.PRODUCTION
        mark, collate = MARKS[self.backend], COLLATE[self.backend]
        series = self.series
        if query == "leaderboard":
            lq = parse_leaderboard(
                multi, tenant_id=self.tenant_id, environment=env, zone=ZoneInfo(self.tenant_zone)
            )
            return lq.filter, lambda contexts: leaderboard_sql(
                mark,
                lq.filter,
                contexts,
                by=lq.by,
                agg=lq.agg,
                limit=lq.limit,
                collate=collate,
                series=series,
            )
        sq = parse_series(
            multi, tenant_id=self.tenant_id, environment=env, tenant_zone=self.tenant_zone
        )
        return sq.filter, lambda contexts: slots_sql(
            mark,
            sq.filter,
            contexts,
            slot=slot_size(sq.boundaries),
            group_by=sq.group_by,
            with_last=sq.agg == "last",
            collate=collate,
            series=series,
        )

    async def _fetch(self, sql: str, params: list[Any]) -> list[Any]:
        if self.sqlite is not None:
            return self.sqlite.execute(sql, params).fetchall()
        rows: list[Any] = await self.postgres.fetch(sql, *params)
        return rows

    @property
    def series(self) -> bool:
        """SQLite's reads name their series ids (migration 0008), never contexts."""
        return self.backend == "sqlite"

    async def _contexts(self, flt: PointFilter) -> list[str] | None:
        if self.series or not needs_contexts(flt):
            return None
        sql, params = contexts_sql(MARKS[self.backend], flt.tenant_id, flt.environment)
        return [r[0] for r in await self._fetch(sql, params)]

    async def via_sql(self, flt: PointFilter, build: Any) -> list[Any]:
        """The store's statements on a plain connection: contexts if needed, then the read."""
        sql, params = build(await self._contexts(flt))
        return await self._fetch(sql, params)

    async def count(self, flt: PointFilter) -> int:
        """How many points the filter selects (what the query aggregates)."""
        b = Binder(MARKS[self.backend])
        where = where_points(b, flt, await self._contexts(flt), series=self.series)
        rows = await self._fetch(f"SELECT COUNT(*) FROM data_points WHERE {where}", b.params)
        return int(rows[0][0])


@contextlib.asynccontextmanager
async def direct(dataset: Dataset) -> Any:
    settings = Settings(database_url=dataset.database_url)
    store = open_storage(settings)
    await store.start()
    try:
        tenant = await store.get_tenant(dataset.tenant.name)
        assert tenant is not None
        d = Direct(dataset.backend, store, tenant.id, tenant.timezone)
        if dataset.backend == "sqlite":
            d.sqlite = sqlite3.connect(Path(dataset.database_url[len("sqlite:///") :]))
            # As the server's query connections are set up: the ratio is the API's cost.
            d.sqlite.execute(f"PRAGMA mmap_size = {settings.sqlite_mmap_size}")
        else:
            import asyncpg

            d.postgres = await asyncpg.connect(dataset.database_url)
        try:
            yield d
        finally:
            if d.sqlite is not None:
                d.sqlite.close()
            if d.postgres is not None:
                await d.postgres.close()
    finally:
        await store.close()


# -- measuring -----------------------------------------------------------------------


@dataclass
class Timings:
    ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    points: dict[str, list[int]] = field(default_factory=dict)

    def add(self, query: str, path: str, seconds: float) -> None:
        self.ms.setdefault((query, path), []).append(seconds * 1000)

    def median(self, query: str, path: str) -> float:
        return median(self.ms[(query, path)])

    def p95(self, query: str, path: str) -> float:
        ordered = sorted(self.ms[(query, path)])
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


def check_same(query: str, case: Case, api: dict[str, Any], stored: Any) -> None:
    """The API's answer agrees with the store's."""
    if query == "leaderboard":
        got = [(e["rank"], e["user_id"], e["value"], e["count"]) for e in api["entries"]]
        want = [(e.rank, e.id, e.value, e.count) for e in stored]
        if got != want:
            raise SystemExit(f"leaderboard {case}: API {got[:3]}... != store {want[:3]}...")
        return
    api_count = sum(b["count"] for s in api["series"] for b in s["buckets"])
    store_count = sum(p.points for p in stored)
    if api_count != store_count or not api["series"]:
        raise SystemExit(f"series {case}: API counts {api_count} != store {store_count}")


async def measure(dataset: Dataset, port: int, access: str, args: argparse.Namespace) -> Timings:
    plan = cases(dataset.spec, args.variants)
    result = Timings()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with direct(dataset) as d:

            async def one(query: str, case: Case, i: int, record: bool) -> None:
                params = case.params(query)
                request = get_request(dataset.tenant, access, query, params)
                flt, build = d.statements(query, params)

                async def api() -> tuple[int, bytes]:
                    return await exchange(reader, writer, request)

                async def store() -> Any:
                    return await d.via_store(query, params)

                async def sql() -> Any:
                    return await d.via_sql(flt, build)

                calls: dict[str, Callable[[], Awaitable[Any]]] = {
                    "api": api,
                    "store": store,
                    "sql": sql,
                }
                # Alternate the order, so no path always runs on pages the other warmed.
                order = PATHS if i % 2 == 0 else PATHS[::-1]
                answers: dict[str, Any] = {}
                for path in order:
                    seconds, answers[path] = await timed(calls[path])
                    if record:
                        result.add(query, path, seconds)
                status, body = answers["api"]
                if status != 200:
                    raise SystemExit(f"{query} {case}: HTTP {status} {body[:300]!r}")
                if not record:
                    check_same(query, case, json.loads(body), answers["store"])
                    result.points.setdefault(query, []).append(await d.count(flt))

            for i, case in enumerate(plan):  # warm-up, and the answers checked
                for query in QUERIES:
                    await one(query, case, i, record=False)
            for i in range(args.repeat):
                for query in QUERIES:
                    await one(query, plan[i % len(plan)], i, record=True)
    finally:
        writer.close()
    return result


def report(backend: str, t: Timings) -> tuple[list[str], bool]:
    """One line per query, and whether every target was met."""
    lines = []
    met = True
    for query in QUERIES:
        api, store, sql = (t.median(query, p) for p in PATHS)
        points = t.points.get(query, [0])
        fast, lean = api <= TARGET_MS, api / sql <= TARGET_RATIO
        met = met and fast and lean
        lines.append(
            f"{backend:<8} {query:<11} API {api:7.1f} ms (p95 {t.p95(query, 'api'):6.1f}) | "
            f"store {store:7.1f} ms (p95 {t.p95(query, 'store'):6.1f}) | "
            f"sql {sql:7.1f} ms | API/store {api / store:5.2f} | API/sql {api / sql:5.2f} | "
            f"API <= {TARGET_MS:g} ms: {'ok' if fast else 'MISSED'}, "
            f"API/sql <= {TARGET_RATIO:g}: {'ok' if lean else 'MISSED'} | "
            f"points selected {min(points):,}-{max(points):,}"
        )
    return lines, met


def run(backend: str, spec: Spec, args: argparse.Namespace) -> tuple[list[str], bool]:
    dataset = ensure(spec, backend, fresh=args.fresh, admin_url=args.postgres_url)
    describe(dataset)
    with serve(dataset.env) as server:
        access = token(server.port, dataset.tenant, scope="kpi:read")
        timings = asyncio.run(measure(dataset, server.port, access, args))
    lines, met = report(backend, timings)
    for line in lines:
        print(line)
    return lines, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    add_spec_arguments(parser)
    parser.add_argument("--repeat", type=int, default=20, help="measured runs per query")
    parser.add_argument("--variants", type=int, default=10, help="distinct seeded cases")
    parser.add_argument("--fresh", action="store_true", help="rebuild the dataset first")
    args = parser.parse_args()
    spec = spec_from(args)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(
        f"Queries: {spec.points:,} points, {args.repeat} measured runs per query over "
        f"{args.variants} cases after a warm-up pass; medians (p95) in ms"
    )
    results = [run(backend, spec, args) for backend in backends]
    print()
    for lines, _ in results:
        for line in lines:
            print(line)
    if not all(met for _, met in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
