"""Write-behind staging of ingested points on SQLite.

Why: the time index (``series_id, ts, ...``: a series per tenant, environment, context
and KPI) receives every element at a random place of its recent end, because live
feeds arrive minutes late and KPIs interleave. Written straight into ``data_points``,
a group commit of 800 elements dirties about 440 index pages, which SQLite writes to
the WAL (and later back to the database): 2.2 KB of page writes per element, most of
the writer's time.

So an accepted batch goes into ``data_points_incoming``, a table with the same
columns but no key and no index: each row is appended at its end, in arrival order.
The writer moves the staged rows into ``data_points`` in one statement (a *merge*)
when enough are waiting (``merge_due``), when no batch has arrived for
``MERGE_IDLE`` seconds, and before any read of the points (``SqliteStorage`` settles
first), so a read never misses an acknowledged element. A merge of thousands of rows
dirties the same few hundred index pages once.

A batch's elements are counted as created / updated / unchanged against
``data_points`` alone, and each staged row carries its final revision, so a staged
row is exactly what ``data_points`` will hold. That needs the prior row of every
element to be in ``data_points``: the writer knows which ids it staged since its last
merge (``StagedIds``), and merges first when a batch holds one of them, a resend
within moments (a live feed's batches are new elements). So the staging table never
holds two rows of one key, and is never searched by key.

Staged rows are committed like any other: an acknowledged element is durable whether
it has been merged or not, and a restart merges what a crash left staged.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import msgspec

from kpihub import domain
from kpihub.storage import _sql
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.base import RenderAck

STAGING = "data_points_incoming"
MERGE_ROWS = 2_048
"""The fewest staged rows that make the writer merge after a group commit."""
MERGE_ROWS_MAX = 16_384
MERGE_GROUPS = 2
"""With big groups the threshold grows to this many groups' rows (up to MERGE_ROWS_MAX)."""
MERGE_IDLE = 0.05
"""Seconds without a write after which the writer merges whatever is staged."""

_KEY = "tenant_id, environment, type, context, element_id"
_STAGED_COLUMNS = f"{_sql.POINT_COLUMNS}, revision, series_id"
_COMPARED = ", ".join(_sql.COMPARED)
# A staged row: the batch's head (?1-?4: tenant, environment, type, context), the
# point's own values (element id, compared columns, revision, series id: VALUES'
# column1...), the batch's tail (?5, ?6: batch id, time). Head and tail are bound once
# per statement, not once per row: binding is most of what a staging insert costs in
# Python.
_OWN = 1 + len(_sql.COMPARED) + 2
# Values a batch's rows often share: a KPI (and so a series), a type, units, a user or
# location, no date range. One that every row of a batch has is bound once per statement
# (?7, ?8...), not once per row. Binding costs per value, and more for None, which sqlite3
# binds through its adaptation protocol (a registry lookup): binding the two date-range
# columns, which most feeds never send, as None for every element was 7% of the writer's
# time.
_SHAREABLE = (
    *(
        1 + _sql.COMPARED.index(c)
        for c in ("kpi", "object_type", "units", "user_id", "location_id", "date_from", "date_to")
    ),
    _OWN - 1,  # the series id
)
# Powers of two: a handful of distinct statements, all in sqlite3's statement cache.
_CHUNK_SIZES = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)


@functools.cache
def _stage_sql(rows: int, shared: tuple[int, ...]) -> str:
    """The insert of ``rows`` staged rows whose values at ``shared`` are bound once."""
    own = [i for i in range(_OWN) if i not in shared]

    def value(i: int) -> str:
        return f"?{7 + shared.index(i)}" if i in shared else f"column{own.index(i) + 1}"

    tail = (value(_OWN - 2), value(_OWN - 1))  # revision, series id
    select = ", ".join(["?1, ?2, ?3, ?4", *map(value, range(_OWN - 2)), "?5, ?6", *tail])
    row = "(" + ",".join("?" * len(own)) + ")"
    return (
        f"INSERT INTO {STAGING} ({_STAGED_COLUMNS}) SELECT {select} "
        "FROM (VALUES " + ",".join([row] * rows) + ")"
    )


_COUNTED = ", ".join(f"t.{c}" for c in ("element_id", "revision", *_sql.COMPARED))
# ``data_points``' rows of a batch's ids (?5, a JSON array) in its scope (?1-?4). One key
# seek per id, in the batch's order: the ids drive the join (CROSS JOIN fixes the order;
# left to itself the planner scans the time index). ``element_id IN (SELECT value FROM
# json_each(?))`` first sorted the ids into a temporary index, 4% of the writer's
# instructions in SQLite.
_PRIORS_SQL = (
    f"SELECT {_COUNTED} FROM json_each(?5) AS j CROSS JOIN data_points AS t "
    "ON t.element_id = j.value AND t.tenant_id = ?1 AND t.environment = ?2 "
    "AND t.type = ?3 AND t.context = ?4"
)
_MERGE_SQL = (
    f"INSERT INTO data_points ({_STAGED_COLUMNS}) "
    f"SELECT {_STAGED_COLUMNS} FROM {STAGING} WHERE true "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET "
    + ", ".join(
        f"{c} = excluded.{c}"
        for c in (*_sql.COMPARED, "batch_id", "updated_at", "revision", "series_id")
    )
)
HAS_STAGED_SQL = f"SELECT 1 FROM {STAGING} LIMIT 1"
# The ids for json_each: a tenth of the standard library's time (ids are plain strings:
# the request's JSON, decoded by msgspec, holds no lone surrogates).
_ENCODE = msgspec.json.Encoder().encode
# A point's id, then its values in _sql.COMPARED order (its timestamp is the ts column).
_row_of = operator.itemgetter(
    *(
        domain.DataPoint._fields.index(name)
        for name in ("element_id", *("timestamp" if c == "ts" else c for c in _sql.COMPARED))
    )
)

PointRow = tuple[Any, ...]
"""A point as ``stage_batch`` takes it: ``(element_id, *compared)`` (see ``point_rows``)."""


def point_rows(points: list[domain.DataPoint]) -> list[PointRow]:
    return [_row_of(p) for p in points]


def _qmark(_: int) -> str:
    return "?"


_INSERT_BATCH = _sql.insert_batch_sql(_qmark)


class SeriesIds:
    """Series ids (``series``: migration 0008) by tenant, environment, context and KPI,
    as the writer has read or created them.

    A series row is never deleted, so an id once committed stays right. One created in
    a transaction that rolls back (or in a job's savepoint that does) is gone with it:
    the writer then ``forget``s them all, and reads them again as batches need them.
    """

    _FIND = (
        "SELECT id FROM series WHERE tenant_id = ? AND environment = ? AND context = ? AND kpi = ?"
    )
    _CREATE = "INSERT INTO series (tenant_id, environment, context, kpi) VALUES (?, ?, ?, ?)"

    def __init__(self) -> None:
        self._ids: dict[tuple[Any, ...], int] = {}

    def of(self, conn: sqlite3.Connection, scope: tuple[Any, ...], kpi: str) -> int:
        """The id of ``scope`` (tenant, environment, context) and ``kpi``, created if new."""
        key = (*scope, kpi)
        found = self._ids.get(key)
        if found is None:
            row = conn.execute(self._FIND, key).fetchone()
            found = row[0] if row else conn.execute(self._CREATE, key).lastrowid
            assert found is not None
            self._ids[key] = found
        return found

    def forget(self) -> None:
        self._ids.clear()


class StagedIds:
    """What the writer knows of the staging table: which element ids may be staged, per
    scope (tenant, environment, type, context), and how many rows it staged.

    The ids are a superset of what the table holds: added when staged, forgotten when
    a merge empties the table (``emptied``). A batch any of whose ids may be staged is
    merged before it is counted (``stage_batch``), so the table never holds two rows of
    one key and a batch is always counted against ``data_points`` alone.

    ``unknown``: the table may hold rows this writer did not stage (a crash's leftovers
    at start, another process's commit), or a rollback undid a merge it was told of.
    Until the next merge, every batch then merges first.
    """

    def __init__(self, *, known: bool = True) -> None:
        self.known = known
        self.rows = 0
        self._ids: dict[tuple[Any, ...], set[str]] = {}

    @property
    def waiting(self) -> int:
        """Rows to merge: those staged since the last merge, at least 1 when unknown."""
        return self.rows if self.known else max(self.rows, 1)

    def may_hold(self, head: tuple[Any, ...], ids: list[str]) -> bool:
        if not self.known:
            return True
        staged = self._ids.get(head)
        return staged is not None and not staged.isdisjoint(ids)

    def add(self, head: tuple[Any, ...], ids: list[str]) -> None:
        self._ids.setdefault(head, set()).update(ids)
        self.rows += len(ids)

    def emptied(self) -> None:
        """A merge emptied the staging table (if its transaction rolls back: ``unknown``)."""
        self._ids.clear()
        self.known = True
        self.rows = 0

    def unknown(self) -> None:
        self._ids.clear()
        self.known = False


def merge_due(staged: int, last_group: int) -> bool:
    """Whether the writer merges now, after a group commit that staged ``last_group`` rows.

    A bigger merge dirties each time-index page for more rows, but every request queued
    meanwhile waits for it. So the threshold follows the groups: MERGE_ROWS when
    requests are small (a merge pause of a few milliseconds), MERGE_GROUPS groups' worth
    when they are big (a pause of the order of a group's own commit), MERGE_ROWS_MAX at
    most.
    """
    return staged >= min(MERGE_ROWS_MAX, max(MERGE_ROWS, MERGE_GROUPS * last_group))


def stage_batch(
    conn: sqlite3.Connection,
    write: domain.BatchWrite,
    points: list[PointRow],
    render: RenderAck,
    staged: StagedIds,
    series: SeriesIds,
) -> tuple[domain.BatchCounts, bytes] | None:
    """Count ``points`` (``write``'s elements, as ``point_rows`` gives them) against what
    is stored, stage the new and changed ones, record the batch; ``None`` when a
    concurrent request with the same key won. ``write.batch.points`` is not read.

    When any of them may be staged already (``staged``), the staging table is merged
    first, in the same transaction: then ``data_points`` holds every prior row."""
    if (
        write.idempotency_key is not None
        and conn.execute(
            "SELECT 1 FROM idempotency_keys WHERE client_pk = ? AND key = ? AND created_at >= ?",
            (write.client_pk, write.idempotency_key, write.idempotency_since),
        ).fetchone()
    ):
        return None
    batch = write.batch
    head = (write.tenant_id, write.environment.value, batch.type, batch.context)
    id_list = [p[0] for p in points]
    ids = _ENCODE(id_list).decode()  # text: json_each refuses a BLOB
    if staged.may_hold(head, id_list):
        merge(conn)
        staged.emptied()
    priors = {row[0]: (row[1], row[2:]) for row in conn.execute(_PRIORS_SQL, (*head, ids))}
    tail = (write.batch_id, write.received_at)
    scope = (write.tenant_id, write.environment.value, batch.context)
    series_of: dict[str, int] = {}
    rows: list[tuple[Any, ...]] = []
    updated = 0
    for p in points:
        prior = priors.get(p[0])
        if prior is None:
            revision = 1
        elif prior[1] == p[1:]:
            continue
        else:
            revision = prior[0] + 1
            updated += 1
        kpi = p[1]
        series_id = series_of.get(kpi)
        if series_id is None:
            series_id = series_of[kpi] = series.of(conn, scope, kpi)
        rows.append((*p, revision, series_id))
    staged.add(head, [row[0] for row in rows])
    _stage(conn, (*head, *tail), rows)
    counts = domain.BatchCounts(
        received=len(points),
        created=len(rows) - updated,
        updated=updated,
        unchanged=len(points) - len(rows),
    )
    conn.execute(_INSERT_BATCH, _sql.batch_values(write, counts))
    body = render(counts)
    if write.idempotency_key is not None:
        conn.execute(
            # An expired record of the same key (not purged yet) is replaced.
            "INSERT OR REPLACE INTO idempotency_keys "
            "(client_pk, key, request_hash, status, body, created_at) VALUES (?, ?, ?, 200, ?, ?)",
            (
                write.client_pk,
                write.idempotency_key,
                write.request_hash,
                body,
                int(write.received_at),
            ),
        )
    return counts, body


def _stage(conn: sqlite3.Connection, fixed: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (a point's own values) with ``fixed`` (head, tail) into staging."""
    if not rows:
        return
    first, last = rows[0], rows[-1]
    shared = tuple(
        i
        for i in _SHAREABLE
        if first[i] == last[i]
        and list(map(operator.itemgetter(i), rows)).count(first[i]) == len(rows)
    )
    if shared:
        fixed = (*fixed, *(first[i] for i in shared))
        rows = list(map(operator.itemgetter(*(i for i in range(_OWN) if i not in shared)), rows))
    start, left = 0, len(rows)
    for size in _CHUNK_SIZES:
        while left >= size:
            params = list(fixed)
            for row in rows[start : start + size]:
                params += row
            conn.execute(_stage_sql(size, shared), params)
            start += size
            left -= size


def merge_copy(conn: sqlite3.Connection) -> None:
    """Merge what a copy of a database holds staged (nothing before migration 0005)."""
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STAGING,)
    ).fetchone():
        conn.execute("BEGIN IMMEDIATE")
        merge(conn)
        conn.execute("COMMIT")


_SECURE_DELETE = ("OFF", "ON", "FAST")  # what PRAGMA secure_delete reads, as it is set


def merge(conn: sqlite3.Connection) -> int:
    """Move every staged row into ``data_points``; the number moved.

    The staging table's pages are freed without being zeroed, whatever ``secure_delete``
    says for the rest (Debian's SQLite has it on): every row on them has just been
    merged into ``data_points``, and the next batches staged overwrite them. Zeroed, each
    freed page was one more page written to the WAL: 5% of the writer's throughput.
    """
    moved = conn.execute(_MERGE_SQL).rowcount
    (secure,) = conn.execute("PRAGMA secure_delete").fetchone()
    conn.execute("PRAGMA secure_delete = OFF")
    try:
        conn.execute(f"DELETE FROM {STAGING}")
    finally:
        conn.execute(f"PRAGMA secure_delete = {_SECURE_DELETE[secure]}")
    return int(moved)
