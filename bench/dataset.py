"""A large, deterministic KPI dataset in a migrated store, for the query bench.

    python -m bench.dataset --backend sqlite|postgres [--points 10000000] [--fresh] [--drop]

One tenant, one environment (production) and one integration type; ``--users`` users
(5,000), each belonging to one of ``--locations`` locations (300); 20 KPIs in 4
contexts; timestamps over ``--days`` days (365) from ``--start`` (2025-11-01, UTC),
in opening hours. Values are drawn per KPI (counts, money, hours, percentages) and
scaled by a per-user factor, so leaderboards have a shape. Everything comes from
``--seed``: the same parameters give the same rows.

The tenant, its integration and a client are made through the ``kpihub`` command
(``bench.common.setup_tenant``) on a freshly migrated store; then one ``batches`` row
and the ``data_points`` rows are bulk-loaded with the fastest path of each backend:

- SQLite: one connection, no journal, ``synchronous=OFF``, one transaction of
  ``executemany`` over chunks of pre-built tuples appended to the rowid table, its
  indexes (the key's and the time index) dropped before and recreated after from
  their own ``CREATE INDEX`` text; WAL mode restored.
- PostgreSQL: every index and the primary key dropped, ``TRUNCATE`` + ``COPY ... FREEZE``
  in one transaction, then the primary key and indexes recreated from their own
  definitions (``maintenance_work_mem`` 1 GB) and ``VACUUM ANALYZE``.

The schema is checked afterwards to be the migrated one (``sqlite_master`` /
``pg_indexes`` and constraints, compared before and after). Datasets are cached:
SQLite files under ``bench/.data/``, PostgreSQL databases named
``kpihub_bench_query_<key>`` (their secret key and client under ``bench/.data/``),
keyed by the parameters, the generator version and the migration scripts. ``--fresh``
rebuilds; ``--drop`` deletes the cached dataset and exits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Tenant, cli, kpihub_env, postgres_url, setup_tenant
from kpihub.storage._sqlite_driver import sqlite3

GENERATOR_VERSION = 1
DATA_DIR = Path(__file__).with_name(".data")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENVIRONMENT = "production"
TENANT = "bench"
CHUNK = 50_000
OPENING = 7 * 3600  # first second of opening hours (UTC) ...
OPEN_SECONDS = 14 * 3600  # ... and how long they last


@dataclass(frozen=True)
class Kpi:
    context: str
    name: str
    units: str
    low: float
    high: float
    power: float  # value = low + (high - low) * u**power: > 1 skews towards low
    decimals: int


# 4 contexts x 5 KPIs; a KPI name belongs to one context, as in real integrations.
KPIS: tuple[Kpi, ...] = (
    Kpi("hr", "bonuses", "Eur", 0, 500, 3.0, 2),
    Kpi("hr", "hours_worked", "Hours", 1, 10, 1.0, 2),
    Kpi("hr", "overtime", "Hours", 0, 4, 4.0, 2),
    Kpi("hr", "sick_hours", "Hours", 0, 8, 6.0, 1),
    Kpi("hr", "training_hours", "Hours", 0, 3, 3.0, 1),
    Kpi("loyalty", "experience", "XP", 1, 250, 1.5, 0),
    Kpi("loyalty", "members_signed", "Members", 0, 5, 2.0, 0),
    Kpi("loyalty", "points", "Points", 5, 1000, 2.0, 0),
    Kpi("loyalty", "reviews", "Reviews", 0, 3, 3.0, 0),
    Kpi("loyalty", "streak_days", "Days", 0, 30, 1.5, 0),
    Kpi("sales", "accessories", "Items", 0, 12, 2.0, 0),
    Kpi("sales", "device_sales", "Devices", 0, 8, 1.5, 0),
    Kpi("sales", "profit", "Eur", -50, 900, 2.0, 2),
    Kpi("sales", "revenue", "Eur", 10, 4000, 2.0, 2),
    Kpi("sales", "subscriptions", "Subscriptions", 0, 4, 2.5, 0),
    Kpi("service", "calls_handled", "Calls", 0, 80, 1.0, 0),
    Kpi("service", "csat", "Percent", 40, 100, 0.5, 1),
    Kpi("service", "first_contact_resolution", "Percent", 30, 100, 0.7, 1),
    Kpi("service", "handle_time", "Seconds", 60, 1200, 2.0, 0),
    Kpi("service", "nps", "Score", -100, 100, 0.6, 0),
)
CONTEXTS: tuple[str, ...] = tuple(sorted({k.context for k in KPIS}))


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Spec:
    points: int = 10_000_000
    users: int = 5_000
    locations: int = 300
    start: str = "2025-11-01"
    days: int = 365
    seed: int = 2026

    @property
    def start_ts(self) -> int:
        return _epoch(self.start)

    @property
    def end_ts(self) -> int:
        """The end of the covered period (exclusive): start + days."""
        return self.start_ts + self.days * 86_400

    def key(self) -> str:
        """Parameters, generator version and migration scripts, hashed: the cache key."""
        digest = hashlib.sha256(json.dumps([asdict(self), GENERATOR_VERSION]).encode())
        digest.update(_schema_fingerprint())
        return digest.hexdigest()[:12]

    def user_id(self, user: int) -> str:
        return f"u{user:05d}"

    def location_id(self, location: int) -> str:
        return f"loc{location:03d}"

    def user_locations(self) -> list[int]:
        """The location of each user: every location gets users, unevenly."""
        rng = random.Random(f"{self.seed}/locations")
        homes = [u % self.locations for u in range(self.users)]
        # Move a third of the users somewhere else at random: stores differ in size.
        for u in rng.sample(range(self.users), self.users // 3):
            homes[u] = rng.randrange(self.locations)
        return homes

    def user_factors(self) -> list[float]:
        """How good each user is (0.3-1.7): scales every value of theirs."""
        rng = random.Random(f"{self.seed}/factors")
        return [0.3 + 1.4 * rng.random() for _ in range(self.users)]


def _schema_fingerprint() -> bytes:
    import kpihub.storage.migrate as migrate

    versions = Path(migrate.__file__).with_name("migrations") / "versions"
    digest = hashlib.sha256()
    for script in sorted(versions.glob("*.py")):
        digest.update(script.name.encode() + script.read_bytes())
    return digest.digest()


# -- rows ------------------------------------------------------------------------------

POINT_COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "environment",
    "type",
    "context",
    "element_id",
    "kpi",
    "object_type",
    "value",
    "units",
    "user_id",
    "location_id",
    "ts",
    "date_from",
    "date_to",
    "batch_id",
    "updated_at",
)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Owner:
    """Where the points go: ids made by ``setup_tenant``, the batch they came in."""

    tenant_id: int
    client_pk: int
    type: str
    batch_id: str
    loaded_at: float


def chunks(spec: Spec, owner: Owner, size: int = CHUNK) -> Iterator[list[Row]]:
    """Every point, ``size`` rows at a time, in primary-key order.

    Contexts in name order, element ids zero-padded and increasing within a context:
    ``(tenant, environment, type, context, element_id)`` ascends. Each chunk has its
    own seed, so a chunk does not depend on the ones before it.
    """
    homes = [spec.location_id(h) for h in spec.user_locations()]
    factors = spec.user_factors()
    users = [spec.user_id(u) for u in range(spec.users)]
    width = len(str(spec.points))
    per_context, extra = divmod(spec.points, len(CONTEXTS))
    for c, context in enumerate(CONTEXTS):
        kpis = [k for k in KPIS if k.context == context]
        n_kpis = len(kpis)
        params = [
            (k.name, k.units, float(k.low), float(k.high - k.low), k.power, k.decimals)
            for k in kpis
        ]
        total = per_context + (1 if c < extra else 0)
        for first in range(0, total, size):
            rng = random.Random(f"{spec.seed}/{context}/{first}")
            rand = rng.random
            n_users = spec.users
            days = spec.days
            start = spec.start_ts + OPENING
            rows: list[Row] = []
            append = rows.append
            for i in range(first, min(total, first + size)):
                name, units, low, span, power, decimals = params[int(rand() * n_kpis)]
                u = int(rand() * n_users)
                ts = start + int(rand() * days) * 86_400 + int(rand() * OPEN_SECONDS)
                value = round((low + span * rand() ** power) * factors[u], decimals)
                append(
                    (
                        owner.tenant_id,
                        ENVIRONMENT,
                        owner.type,
                        context,
                        f"{i:0{width}d}",
                        name,
                        "number",
                        value,
                        units,
                        users[u],
                        homes[u],
                        ts,
                        ts,
                        ts,
                        owner.batch_id,
                        owner.loaded_at,
                    )
                )
            yield rows


def _batch_row(spec: Spec, owner: Owner) -> Row:
    """The one ``batches`` row every point names (raw body not kept)."""
    return (
        owner.batch_id,
        owner.tenant_id,
        ENVIRONMENT,
        owner.client_pk,
        "kpi",
        owner.type,
        None,
        "1.0.0",
        200,
        spec.points,
        spec.points,
        0,
        0,
        owner.loaded_at,
        None,
        None,
        False,
        None,
        "bench.dataset bulk load",
        None,
    )


_BATCH_COLUMNS = (
    "id, tenant_id, environment, client_pk, endpoint, type, context, version, http_status, "
    "received, created, updated, unchanged, received_at, duration_ms, raw_body, "
    "body_truncated, errors, message, idempotency_key"
)


# -- the cached dataset ----------------------------------------------------------------


@dataclass
class Dataset:
    spec: Spec
    backend: str
    database_url: str
    workdir: Path
    tenant: Tenant
    built_seconds: float
    timings: dict[str, float]

    @property
    def env(self) -> dict[str, str]:
        return kpihub_env(self.workdir, self.database_url)

    def size_bytes(self) -> dict[str, int]:
        if self.backend == "sqlite":
            path = Path(self.database_url[len("sqlite:///") :])
            return {"database": path.stat().st_size}
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT pg_database_size(current_database()), "
                "pg_table_size('data_points'), pg_indexes_size('data_points')"
            ).fetchone()
        assert row is not None
        return {"database": row[0], "data_points table": row[1], "data_points indexes": row[2]}


def database_name(spec: Spec) -> str:
    return f"kpihub_bench_query_{spec.key()}"


def _workdir(spec: Spec, backend: str) -> Path:
    return DATA_DIR / f"{backend}-{spec.key()}"


def _database_url(spec: Spec, backend: str, admin_url: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{(_workdir(spec, backend) / 'kpihub.db').resolve()}"
    return postgres_url(admin_url, database_name(spec))


def cached(spec: Spec, backend: str, admin_url: str = DEFAULT_ADMIN_URL) -> Dataset | None:
    """The dataset built earlier with these parameters, if it is complete and still there."""
    workdir = _workdir(spec, backend)
    meta_file = workdir / "meta.json"
    if not meta_file.exists():
        return None
    meta = json.loads(meta_file.read_text())
    url = _database_url(spec, backend, admin_url)
    if backend == "sqlite":
        if not Path(url[len("sqlite:///") :]).exists():
            return None
    elif not _postgres_exists(admin_url, database_name(spec)):
        return None
    return Dataset(
        spec,
        backend,
        url,
        workdir,
        Tenant(**meta["tenant"]),
        meta["built_seconds"],
        meta["timings"],
    )


def _postgres_exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def drop(spec: Spec, backend: str, admin_url: str = DEFAULT_ADMIN_URL) -> None:
    """Delete the cached dataset: its files and, on PostgreSQL, its database."""
    if backend == "postgres":
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database_name(spec)}" WITH (FORCE)')
    shutil.rmtree(_workdir(spec, backend), ignore_errors=True)


def ensure(
    spec: Spec,
    backend: str,
    *,
    fresh: bool = False,
    admin_url: str = DEFAULT_ADMIN_URL,
    log: bool = True,
) -> Dataset:
    """The dataset for ``spec`` on ``backend``: from the cache, or built now."""
    if not fresh:
        found = cached(spec, backend, admin_url)
        if found is not None:
            if log:
                print(f"dataset {backend}-{spec.key()}: cached ({found.database_url})")
            return found
    drop(spec, backend, admin_url)
    return build(spec, backend, admin_url=admin_url, log=log)


def build(
    spec: Spec, backend: str, *, admin_url: str = DEFAULT_ADMIN_URL, log: bool = True
) -> Dataset:
    workdir = _workdir(spec, backend)
    workdir.mkdir(parents=True, exist_ok=True)
    url = _database_url(spec, backend, admin_url)
    if backend == "postgres":
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database_name(spec)}"')
    env = kpihub_env(workdir, url)
    started = time.perf_counter()
    cli(env, "db", "upgrade")
    tenant = setup_tenant(env, TENANT)
    timings = {"migrate + tenant (CLI)": time.perf_counter() - started}
    if log:
        print(
            f"dataset {backend}-{spec.key()}: {spec.points:,} points, {spec.users:,} users, "
            f"{spec.locations} locations, {len(KPIS)} KPIs in {len(CONTEXTS)} contexts, "
            f"{spec.days} days from {spec.start}, seed {spec.seed}"
        )
    if backend == "sqlite":
        timings.update(_load_sqlite(spec, Path(url[len("sqlite:///") :]), tenant))
    else:
        timings.update(_load_postgres(spec, url, tenant))
    total = time.perf_counter() - started
    meta = {
        "spec": asdict(spec),
        "database_url": url,
        "tenant": asdict(tenant),
        "built_seconds": total,
        "timings": timings,
    }
    (workdir / "meta.json").write_text(json.dumps(meta, indent=2))
    return Dataset(spec, backend, url, workdir, tenant, total, timings)


def _owner_sqlite(conn: sqlite3.Connection, tenant: Tenant, spec: Spec) -> Owner:
    tenant_id = conn.execute("SELECT id FROM tenants WHERE name = ?", (tenant.name,)).fetchone()
    client_pk = conn.execute(
        "SELECT id FROM clients WHERE client_id = ?", (tenant.client_id,)
    ).fetchone()
    return Owner(tenant_id[0], client_pk[0], tenant.integration, _batch_id(spec), time.time())


def _batch_id(spec: Spec) -> str:
    return f"{_epoch(spec.start) * 1000:012x}" + spec.key().ljust(16, "0")


def _load_sqlite(spec: Spec, path: Path, tenant: Tenant) -> dict[str, float]:
    timings: dict[str, float] = {}
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        before = _sqlite_schema(conn)
        owner = _owner_sqlite(conn, tenant, spec)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("PRAGMA cache_size = -1048576")  # 1 GiB: also the sorter's memory
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA threads = 2")  # CREATE INDEX sorts with a helper thread
        indexes = [
            (name, sql)
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'data_points' AND sql IS NOT NULL ORDER BY name"
            )
        ]
        t = time.perf_counter()
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(
            f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ({', '.join('?' * 20)})",
            _batch_row(spec, owner),
        )
        # SQLite's points carry the id of their series (migration 0008).
        series = {
            (k.context, k.name): conn.execute(
                "INSERT INTO series (tenant_id, environment, context, kpi) VALUES (?, ?, ?, ?)",
                (owner.tenant_id, ENVIRONMENT, k.context, k.name),
            ).lastrowid
            for k in KPIS
        }
        insert = (
            f"INSERT INTO data_points ({', '.join(POINT_COLUMNS)}, series_id) "
            f"VALUES ({', '.join('?' * (len(POINT_COLUMNS) + 1))})"
        )
        for rows in chunks(spec, owner):
            conn.executemany(insert, [(*r, series[r[3], r[5]]) for r in rows])
        conn.execute("COMMIT")
        timings["generate + insert"] = time.perf_counter() - t
        t = time.perf_counter()
        for _, sql in indexes:
            conn.execute(sql)
        timings["create indexes"] = time.perf_counter() - t
        conn.execute("PRAGMA locking_mode = NORMAL")
        conn.execute("PRAGMA journal_mode = WAL")
        after = _sqlite_schema(conn)
    finally:
        conn.close()
    if before != after:
        raise SystemExit(f"schema differs after the load:\n{before}\n{after}")
    return timings


def _sqlite_schema(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return list(
        conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name"
        )
    )


def _load_postgres(spec: Spec, url: str, tenant: Tenant) -> dict[str, float]:
    import psycopg

    timings: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        before = _postgres_schema(conn)
        ids = conn.execute(
            "SELECT t.id, c.id FROM tenants t JOIN clients c ON c.tenant_id = t.id "
            "WHERE t.name = %s AND c.client_id = %s",
            (tenant.name, tenant.client_id),
        ).fetchone()
        assert ids is not None
        owner = Owner(ids[0], ids[1], tenant.integration, _batch_id(spec), time.time())
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'data_points'::regclass AND contype IN ('p', 'u') "
            "ORDER BY conname"
        ).fetchall()
        names = {name for name, _ in constraints}
        indexes = [
            (name, sql)
            for name, sql in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = 'data_points' "
                "ORDER BY indexname"
            ).fetchall()
            if name not in names
        ]
        conn.commit()
        t = time.perf_counter()
        with conn.transaction():
            for name, _ in constraints:
                conn.execute(f'ALTER TABLE data_points DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            # Emptied in this transaction, so COPY can write frozen rows (no hint-bit
            # rewrites or freezing vacuum later).
            conn.execute("TRUNCATE data_points")
            conn.execute(
                f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ({', '.join(['%s'] * 20)})",
                _batch_row(spec, owner),
            )
            with conn.cursor() as cur:
                copy_sql = f"COPY data_points ({', '.join(POINT_COLUMNS)}) FROM STDIN (FREEZE)"
                with cur.copy(copy_sql) as copy:
                    for rows in chunks(spec, owner):
                        for row in rows:
                            copy.write_row(row)
        timings["generate + COPY"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        for name, definition in constraints:
            conn.execute(f'ALTER TABLE data_points ADD CONSTRAINT "{name}" {definition}')
        for _, sql in indexes:
            conn.execute(sql)
        conn.commit()
        timings["create indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE data_points")
        conn.execute("ANALYZE batches")
        timings["vacuum analyze"] = time.perf_counter() - t
        after = _postgres_schema(conn)
    if before != after:
        raise SystemExit(f"schema differs after the load:\n{before}\n{after}")
    return timings


def _postgres_schema(conn: Any) -> list[tuple[Any, ...]]:
    indexes = conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY tablename, indexname"
    ).fetchall()
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
        "ORDER BY 1, 2"
    ).fetchall()
    return [*indexes, *constraints]


# -- command line ----------------------------------------------------------------------


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    d = Spec()
    parser.add_argument("--points", type=int, default=d.points)
    parser.add_argument("--users", type=int, default=d.users)
    parser.add_argument("--locations", type=int, default=d.locations)
    parser.add_argument("--start", default=d.start, help="first day (UTC), YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=d.days)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_ADMIN_URL,
        help="an admin connection; the dataset lives in its own database beside it",
    )


def spec_from(args: argparse.Namespace) -> Spec:
    return Spec(args.points, args.users, args.locations, args.start, args.days, args.seed)


def describe(dataset: Dataset) -> None:
    for step, seconds in dataset.timings.items():
        print(f"  {step:<25}: {seconds:7.1f} s")
    print(f"  {'total build':<25}: {dataset.built_seconds:7.1f} s (target < 300 s)")
    for what, size in dataset.size_bytes().items():
        print(f"  size, {what:<19}: {size / 1024**2:9,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    add_spec_arguments(parser)
    parser.add_argument("--fresh", action="store_true", help="rebuild even when cached")
    parser.add_argument("--drop", action="store_true", help="delete the cached dataset, exit")
    args = parser.parse_args()
    spec = spec_from(args)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        if args.drop:
            drop(spec, backend, args.postgres_url)
            print(f"dropped dataset {backend}-{spec.key()}")
            continue
        dataset = ensure(spec, backend, fresh=args.fresh, admin_url=args.postgres_url)
        print(f"  database: {dataset.database_url}")
        describe(dataset)


if __name__ == "__main__":
    main()
