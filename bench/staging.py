"""The SQLite writer alone: points staged then merged, against upserts straight into data_points.

    python -m bench.staging [--points 300000] [--batch 100] [--group 8] [--runs 3]
    python -m bench.staging --only staged ...   # one run of the staged path alone

No HTTP, no event loop: the same validated batches (``bench.points``, as
``bench/versus_influx.py`` sends them) go through the writer's two possible paths on a
fresh, migrated SQLite file each run, with the server's connection settings (WAL,
``synchronous=full``, 64 MiB page cache, no automatic checkpoints: a PASSIVE
checkpoint every 0.5 s of work stands in for the server's checkpointer thread), one
transaction per ``--group`` batches (8 connections sending 100-element batches give
groups of up to 8):

- **direct**: one multi-row upsert per batch into ``data_points`` (primary key and the
  covering time index), ``RETURNING revision`` to count created and updated: kpihub's
  write path before migration 0005;
- **staged**: what the store does now (``storage/_sqlite_staging.py``): counts against
  ``data_points`` (merging first when a batch resends a staged id, ``StagedIds``), the
  rows appended to ``data_points_incoming``, a merge into ``data_points``
  whenever ``merge_due`` says so, as the writer does, and once at the end (included in
  the time).

Prints µs per element (median of ``--runs``), the WAL pages one group commit writes
(counted on a separate pass by checkpointing after every commit; for staged, the pages
of its merges are included, spread over the groups), and the ratio.
Exits non-zero unless staged is faster than direct.

``--only staged`` runs the store's path once and prints its µs per element, nothing
else: the run to count under callgrind, whose instruction counts do not move with
whatever else the machine is doing (``docs/performance.md`` shows how).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import median
from bench.points import generate, kpihub_body
from kpihub import domain
from kpihub.ingest.validate import validate_batch
from kpihub.storage import _sql, _sqlite_staging
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.migrate import upgrade

WritePath = Callable[[sqlite3.Connection, domain.BatchWrite], int]
_ROW = "(" + ",".join("?" * (len(_sql.POINT_COLUMNS.split(",")) + 1)) + ")"
_CHANGED = " OR ".join(f"data_points.{c} IS NOT excluded.{c}" for c in _sql.COMPARED)


def _direct_sql(rows: int) -> str:
    return (
        f"INSERT INTO data_points ({_sql.POINT_COLUMNS}, series_id) VALUES "
        + ",".join([_ROW] * rows)
        + _sql.UPSERT_CONFLICT.replace(" WHERE ", ", series_id = excluded.series_id WHERE ")
        + _CHANGED
        + " RETURNING revision"
    )


def direct(conn: sqlite3.Connection, write: domain.BatchWrite) -> int:
    """The pre-0005 write: one upsert of the whole batch; the rows it created."""
    batch = write.batch
    head = (write.tenant_id, write.environment.value, batch.type, batch.context)
    tail = (write.batch_id, write.received_at)
    params: list[Any] = []
    for p in batch.points:
        params += head
        params += (p.element_id, p.kpi, p.object_type, p.value, p.units, p.user_id)
        params += (p.location_id, p.timestamp, p.date_from, p.date_to)
        params += tail
        params.append(SERIES_IDS.of(conn, (head[0], head[1], head[3]), p.kpi))
    sql = _direct_sql(len(batch.points))
    return sum(1 for (revision,) in conn.execute(sql, params) if revision == 1)


STAGED_IDS = _sqlite_staging.StagedIds()
"""What the writer knows may be staged (``run`` tells it of each merge, as the writer does)."""
SERIES_IDS = _sqlite_staging.SeriesIds()


def staged(conn: sqlite3.Connection, write: domain.BatchWrite) -> int:
    points = _sqlite_staging.point_rows(write.batch.points)
    result = _sqlite_staging.stage_batch(
        conn, write, points, lambda counts: b"", STAGED_IDS, SERIES_IDS
    )
    assert result is not None
    return result[0].created


def batches(points: int, size: int) -> list[domain.BatchWrite]:
    tz = ZoneInfo("UTC")
    out = []
    for n in range(points // size):
        body = kpihub_body(generate(7, n * size, size))
        out.append(
            domain.BatchWrite(
                batch_id=f"bench-{n}",
                tenant_id=1,
                environment=domain.Environment.PRODUCTION,
                client_pk=1,
                batch=validate_batch(json.loads(body), tz=tz),
                raw_body=zlib.compress(body, 1),
                received_at=time.time(),
            )
        )
    return out


def fresh(workdir: Path, name: str) -> sqlite3.Connection:
    path = workdir / f"{name}.db"
    upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    for pragma in (
        "journal_mode = WAL",
        "synchronous = FULL",
        "cache_size = -65536",
        "wal_autocheckpoint = 0",
    ):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("INSERT INTO tenants (name, timezone, created_at) VALUES ('bench', 'UTC', 0)")
    return conn


def run(
    conn: sqlite3.Connection,
    path: WritePath,
    writes: list[domain.BatchWrite],
    group: int,
    *,
    merging: bool,
    count_pages: bool = False,
) -> tuple[float, float]:
    """(seconds, WAL pages per group commit when ``count_pages``)."""
    created = pages = commits = 0
    staged_rows = 0
    STAGED_IDS.emptied()  # a fresh file
    SERIES_IDS.forget()
    started = last_checkpoint = time.perf_counter()
    for g in range(0, len(writes), group):
        before = staged_rows
        conn.execute("BEGIN IMMEDIATE")
        for write in writes[g : g + group]:
            conn.execute("SAVEPOINT job")
            made = path(conn, write)
            conn.execute("RELEASE job")
            created += made
            staged_rows += made
        conn.execute("COMMIT")
        commits += 1
        if count_pages:
            pages += conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        if merging and _sqlite_staging.merge_due(staged_rows, staged_rows - before):
            conn.execute("BEGIN IMMEDIATE")
            _sqlite_staging.merge(conn)
            conn.execute("COMMIT")
            STAGED_IDS.emptied()
            staged_rows = 0
        if not count_pages and time.perf_counter() - last_checkpoint >= 0.5:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            last_checkpoint = time.perf_counter()
    if merging:
        conn.execute("BEGIN IMMEDIATE")
        _sqlite_staging.merge(conn)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    stored = conn.execute("SELECT COUNT(*) FROM data_points").fetchone()[0]
    assert created == stored == sum(len(w.batch.points) for w in writes), (created, stored)
    return seconds, pages / commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--group", type=int, default=8, help="batches per commit")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=("staged",),
        help="time the staged path alone, no page count (e.g. to count its instructions)",
    )
    args = parser.parse_args()
    writes = batches(args.points, args.batch)
    elements = len(writes) * args.batch
    paths: dict[str, tuple[WritePath, bool]] = {"direct": (direct, False), "staged": (staged, True)}
    if args.only:
        with tempfile.TemporaryDirectory(prefix="kpihub-staging-") as tmp:
            path, merging = paths[args.only]
            conn = fresh(Path(tmp), args.only)
            seconds, _ = run(conn, path, writes, args.group, merging=merging)
            conn.close()
        print(f"{args.only}: {seconds / elements * 1e6:.2f} µs/element")
        return
    print(
        f"SQLite writer alone: {elements:,} elements in {args.batch}-element batches, "
        f"{args.group} batches per commit, synchronous=full; {args.runs} runs per path, "
        "alternating"
    )
    timings: dict[str, list[float]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory(prefix="kpihub-staging-") as tmp:
        for r in range(args.runs):
            for name, (path, merging) in paths.items():
                conn = fresh(Path(tmp), f"{name}-{r}")
                seconds, _ = run(conn, path, writes, args.group, merging=merging)
                conn.close()
                timings[name].append(seconds / elements * 1e6)
                print(f"  run {r + 1} {name:7} {timings[name][-1]:6.2f} µs/element")
        sample = writes[: max(1, 100_000 // args.batch)]
        pages = {}
        for name, (path, merging) in paths.items():
            conn = fresh(Path(tmp), f"{name}-pages")
            pages[name] = run(conn, path, sample, args.group, merging=merging, count_pages=True)[1]
            conn.close()
    for name in paths:
        us = median(timings[name])
        print(
            f"{name:7} median {us:6.2f} µs/element = {1e6 / us:9,.0f} elements/s; "
            f"{pages[name]:5.0f} WAL pages per group "
            f"({pages[name] * 4096 / (args.group * args.batch):,.0f} bytes/element)"
        )
    ratio = median(timings["direct"]) / median(timings["staged"])
    print(f"staged is {ratio:.2f}x direct (must be > 1)")
    raise SystemExit(0 if ratio > 1 else 1)


if __name__ == "__main__":
    main()
