"""What a merge costs per row on SQLite, for the shipped layout and for alternatives.

    python -m bench.merge_layouts [--preload 600000] [--rows 16384] [--merges 12] [--runs 3]

The merge (``_sqlite_staging.merge``) moves staged rows into ``data_points``. This
measures it alone, with no HTTP and no counting: ``--preload`` points of the
``bench.points`` stream are merged into a fresh file first, then ``--merges`` times
``--rows`` new points are staged (not timed) and merged (timed: the upsert, the
staging table's DELETE and the COMMIT; WAL, ``synchronous=off``, 64 MiB page cache).
Layouts, each in a fresh file:

- **shipped**: the tables as the migrations make them (a rowid table, its key a unique
  index, the time index ``(series_id, ts, user_id, location_id, value, type)``) and
  the shipped merge statement;
- **no time index**: the same without ``ix_data_points_time``, to split the cost
  between the key's B-tree and the time index (queries need the index);
- **WITHOUT ROWID (0008)**: the layout before migration 0009, the key the B-tree the
  rows live in, so that every time-index entry also carries the whole key;
- **integer ids**: the shipped layout, with environment, type, context, KPI, user,
  location and element id stored as integers (as a dictionary of ids would).

Prints the median µs per merged row of each layout over ``--runs`` alternating runs
(each run's figure is the median of its merges) and the ratio to the shipped layout.
Informational: no target.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import median
from bench.points import KPIS, Point, generate
from kpihub.storage import _sql, _sqlite_staging
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.migrate import upgrade

_STAGE = (
    f"INSERT INTO {_sqlite_staging.STAGING} ({_sql.POINT_COLUMNS}, revision, series_id) "
    "VALUES (1, ?, ?, ?, ?, ?, ?, ?, 'Eur', ?, ?, ?, NULL, NULL, 'b', 1.0, 1, ?)"
)
_KEY = "element_id, tenant_id, environment, type, context"
_COLUMNS = (
    "tenant_id INTEGER NOT NULL, environment TEXT NOT NULL, type TEXT NOT NULL, "
    "context TEXT NOT NULL, element_id TEXT NOT NULL, kpi TEXT NOT NULL, "
    "object_type TEXT NOT NULL, value FLOAT NOT NULL, units TEXT, user_id TEXT, "
    "location_id TEXT, ts BIGINT NOT NULL, date_from BIGINT, date_to BIGINT, "
    "batch_id TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1, updated_at FLOAT NOT NULL, "
    "series_id INTEGER"
)

Row = tuple[Any, ...]


def text_row(p: Point) -> Row:
    text = ("production", "bench-pos", "sales", str(p.id), p.kpi, "number", float(p.value))
    return (*text, str(p.user), str(p.location), p.ts, 1 + KPIS.index(p.kpi))


def integer_row(p: Point) -> Row:
    kpi = KPIS.index(p.kpi)
    return (1, 3, 2, p.id, kpi, 1, float(p.value), p.user, p.location, p.ts, 1 + kpi)


def shipped(conn: sqlite3.Connection) -> None:
    del conn  # the migrations' own tables


def no_time_index(conn: sqlite3.Connection) -> None:
    conn.execute("DROP INDEX ix_data_points_time")


def without_rowid(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE data_points")
    conn.execute(f"CREATE TABLE data_points ({_COLUMNS}, PRIMARY KEY ({_KEY})) WITHOUT ROWID")
    conn.execute(
        "CREATE INDEX ix_data_points_time ON data_points "
        "(series_id, ts, user_id, location_id, value, kpi)"
    )


LAYOUTS: dict[str, tuple[Callable[[sqlite3.Connection], None], Callable[[Point], Row]]] = {
    "shipped": (shipped, text_row),
    "no time index": (no_time_index, text_row),
    "WITHOUT ROWID": (without_rowid, text_row),
    "integer ids": (shipped, integer_row),
}


def fresh(path: Path, layout: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = OFF", "cache_size = -65536"):
        conn.execute(f"PRAGMA {pragma}")
    layout(conn)
    return conn


def stage_and_merge(conn: sqlite3.Connection, rows: list[Row]) -> float:
    """Stage ``rows`` in a transaction of their own, then merge them: the merge's seconds."""
    conn.execute("BEGIN")
    conn.executemany(_STAGE, rows)
    conn.execute("COMMIT")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    _sqlite_staging.merge(conn)
    conn.execute("COMMIT")
    return time.perf_counter() - started


def run(path: Path, name: str, preload: int, rows: int, merges: int) -> float:
    """Median µs per merged row over ``merges`` merges of ``rows`` new points."""
    layout, row = LAYOUTS[name]
    conn = fresh(path, layout)
    try:
        stage_and_merge(conn, [row(p) for p in generate(3, 0, preload)])
        times = [
            stage_and_merge(conn, [row(p) for p in generate(3, preload + i * rows, rows)])
            for i in range(merges)
        ]
    finally:
        conn.close()
    return median(times) / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preload", type=int, default=600_000)
    parser.add_argument("--rows", type=int, default=16_384)
    parser.add_argument("--merges", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        f"SQLite merge alone: {args.merges} merges of {args.rows:,} staged rows into "
        f"{args.preload:,} merged ones; {args.runs} alternating runs per layout"
    )
    figures: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with tempfile.TemporaryDirectory(prefix="kpihub-merge-") as tmp:
        for r in range(args.runs):
            for i, name in enumerate(LAYOUTS):
                path = Path(tmp) / f"{r}-{i}.db"
                figures[name].append(run(path, name, args.preload, args.rows, args.merges))
                print(f"  run {r + 1} {name:14} {figures[name][-1]:5.2f} µs/row")
    base = median(figures["shipped"])
    for name, values in figures.items():
        us = median(values)
        print(f"{name:14} median {us:5.2f} µs/row   {us / base:4.2f}x shipped")


if __name__ == "__main__":
    main()
