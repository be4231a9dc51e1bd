"""SQLite's write-behind staging: accepted points wait in data_points_incoming, then merge.

Whatever the state of a point (staged, merged, staged by another process), the counts
of a batch and every read must be what a store writing data_points directly gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kpihub.domain import (
    BatchCounts,
    Client,
    DataPoint,
    Environment,
    ParsedBatch,
    PointFilter,
    Tenant,
)
from kpihub.storage import _sqlite_staging
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.migrate import upgrade
from kpihub.storage.sqlite import SqliteStorage
from tests.integration.stores import render, write

pytestmark = pytest.mark.anyio

STAGING = _sqlite_staging.STAGING


async def started(url: str) -> SqliteStorage:
    storage = SqliteStorage(url, synchronous="normal")
    await storage.start()
    return storage


@pytest.fixture
async def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SqliteStorage]:
    """A store whose staged points stay staged until a read or the size trigger."""
    monkeypatch.setattr(_sqlite_staging, "MERGE_IDLE", 3600.0)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    storage = await started(url)
    try:
        yield storage
    finally:
        await storage.close()


def url_of(store: SqliteStorage) -> str:
    return f"sqlite:///{store.path}"


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    """What the file holds right now, merged or not (no waiting)."""
    with sqlite3.connect(path) as conn:
        return [tuple(r) for r in conn.execute(sql)]


def counts(created: int = 0, updated: int = 0, unchanged: int = 0) -> BatchCounts:
    return BatchCounts(created + updated + unchanged, created, updated, unchanged)


def every_point(tenant: Tenant) -> PointFilter:
    return PointFilter(tenant_id=tenant.id, environment=Environment.TESTING)


async def ingest(
    store: SqliteStorage, tenant: Tenant, client: Client, batch: str, ids: list[str], value: float
) -> BatchCounts:
    result = await store.ingest(write(tenant, client, batch, ids, value=value), render)
    assert result is not None
    return result[0]


async def test_an_accepted_batch_is_staged_then_merged_by_a_read(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    assert await ingest(store, tenant, client, "b1", ["1", "2"], 1.0) == counts(created=2)

    assert raw(store.path, f"SELECT element_id, revision FROM {STAGING} ORDER BY 1") == [
        ("1", 1),
        ("2", 1),
    ]
    assert raw(store.path, "SELECT COUNT(*) FROM data_points") == [(0,)]

    found = await store.find_points(every_point(tenant), after=None, descending=False, limit=10)

    assert sorted(p.element_id for p in found) == ["1", "2"]
    assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]
    assert raw(store.path, "SELECT element_id, value, revision FROM data_points ORDER BY 1") == [
        ("1", 1.0, 1),
        ("2", 1.0, 1),
    ]


async def test_counts_and_revisions_are_the_same_staged_or_merged(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
    # Against staged rows: one unchanged, one changed, one new.
    assert await ingest(store, tenant, client, "b2", ["1"], 1.0) == counts(unchanged=1)
    assert await ingest(store, tenant, client, "b3", ["2", "3"], 2.0) == counts(1, 1)
    assert await store.count_points(tenant.id, Environment.TESTING) == 3  # merges
    # Against merged rows, and a row both merged and staged again.
    assert await ingest(store, tenant, client, "b4", ["1", "2"], 2.0) == counts(0, 1, 1)
    assert await ingest(store, tenant, client, "b5", ["1"], 5.0) == counts(updated=1)
    assert raw(store.path, f"SELECT element_id, value, revision FROM {STAGING} ORDER BY 1") == [
        ("1", 5.0, 3)
    ]
    assert await store.count_points(tenant.id, Environment.TESTING) == 3
    assert raw(
        store.path, "SELECT element_id, value, revision, batch_id FROM data_points ORDER BY 1"
    ) == [("1", 5.0, 3, "b5"), ("2", 2.0, 2, "b3"), ("3", 2.0, 1, "b3")]


async def test_a_batch_resending_a_staged_id_merges_first(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
    await ingest(store, tenant, client, "b2", ["3"], 1.0)  # new ids: staged beside b1's
    assert raw(store.path, "SELECT COUNT(*) FROM data_points") == [(0,)]

    assert await ingest(store, tenant, client, "b3", ["2", "4"], 3.0) == counts(1, 1)

    # b1 and b2 were merged before b3 was counted: one staged row per key, ever.
    merged = raw(store.path, "SELECT element_id, revision FROM data_points ORDER BY 1")
    staged = raw(store.path, f"SELECT element_id, value, revision FROM {STAGING} ORDER BY 1")
    assert merged == [("1", 1), ("2", 1), ("3", 1)]
    assert staged == [("2", 3.0, 2), ("4", 3.0, 1)]


async def test_a_job_rolled_back_after_merging_leaves_nothing_assumed(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
    # Resends id 2, so the writer merges b1 first; then its batch record collides with
    # b1's and the job rolls back, merge included: b1's rows are staged again.
    with pytest.raises(sqlite3.IntegrityError):
        await store.ingest(write(tenant, client, "b1", ["2", "3"], value=2.0), render)
    assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(2,)]
    assert raw(store.path, "SELECT COUNT(*) FROM data_points") == [(0,)]

    # So the next batch with id 1 still finds it, merged first again.
    assert await ingest(store, tenant, client, "b3", ["1", "4"], 5.0) == counts(1, 1)
    assert await store.count_points(tenant.id, Environment.TESTING) == 3
    assert raw(store.path, "SELECT element_id, value, revision FROM data_points ORDER BY 1") == [
        ("1", 5.0, 2),
        ("2", 1.0, 1),
        ("4", 5.0, 1),
    ]


def shared_nothing(n: int) -> DataPoint:
    return DataPoint(str(n), f"k{n % 3}", "number", n / 2, None, 100 + n, None, None, f"u{n}", None)


def shared_everything(n: int) -> DataPoint:
    return DataPoint(str(n), "sales", "number", n / 2, "Eur", 100 + n, 90, 110, "u1", "l1")


@pytest.mark.parametrize(
    ("make", "odd_one"),
    [(shared_nothing, False), (shared_nothing, True), (shared_everything, False)],
    ids=["nulls-shared", "one-differs", "values-shared"],
)
async def test_every_value_is_stored_whatever_the_rows_share(
    store: SqliteStorage,
    tenant: Tenant,
    client: Client,
    make: Callable[[int], DataPoint],
    odd_one: bool,
) -> None:
    # A value every row of a batch has (None included) is bound once per statement;
    # the others once per row.
    points = [make(n) for n in range(600)]  # more than one chunk: 512 + 64 + 16 + 8
    if odd_one:
        points[300] = DataPoint("300", "k0", "text", 9.5, "Eur", 400, 390, 410, None, "l1")
    batch = write(tenant, client, "b1", [])
    batch.batch = ParsedBatch("acme-pos", "1.0.0", "sales", points)

    assert (await store.ingest(batch, render)) is not None

    assert await store.count_points(tenant.id, Environment.TESTING) == 600
    stored = raw(
        store.path,
        "SELECT element_id, kpi, object_type, value, units, ts, date_from, date_to, user_id, "
        "location_id FROM data_points",
    )
    assert sorted(stored, key=lambda r: int(str(r[0]))) == [tuple(p) for p in points]


async def test_the_writer_merges_when_enough_rows_are_staged(
    store: SqliteStorage, tenant: Tenant, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_staging, "MERGE_ROWS", 10)
    await ingest(store, tenant, client, "b1", [str(i) for i in range(6)], 1.0)
    assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(6,)]

    await ingest(store, tenant, client, "b2", [str(i) for i in range(6, 12)], 1.0)

    for _ in range(500):  # the merge follows the commit that crossed the threshold
        if raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]:
            break
        await asyncio.sleep(0.01)
    assert raw(store.path, "SELECT COUNT(*) FROM data_points") == [(12,)]
    assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]


async def test_the_writer_merges_when_idle(
    store: SqliteStorage, tenant: Tenant, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_staging, "MERGE_IDLE", 0.05)
    store = await started(url_of(store))  # a second store, on the default
    try:
        await ingest(store, tenant, client, "b1", ["1"], 1.0)
        for _ in range(500):
            if raw(store.path, "SELECT COUNT(*) FROM data_points") == [(1,)]:
                break
            await asyncio.sleep(0.01)
        assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]
        assert raw(store.path, "SELECT COUNT(*) FROM data_points") == [(1,)]
    finally:
        await store.close()


async def test_a_clean_stop_merges_everything(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    store = await started(url_of(store))
    await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
    await store.close()

    assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]
    assert raw(store.path, "SELECT COUNT(*) FROM data_points") == [(2,)]


async def crashed_with_two_staged(
    store: SqliteStorage, tenant: Tenant, client: Client, tmp_path: Path
) -> Path:
    """A copy of the file as a SIGKILL would leave it: elements 1 and 2 committed,
    staged, not merged."""
    crashed_copy = tmp_path / "crashed.db"
    await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
    with sqlite3.connect(store.path) as src, sqlite3.connect(crashed_copy) as dst:
        src.backup(dst)
    assert raw(crashed_copy, f"SELECT COUNT(*) FROM {STAGING}") == [(2,)]
    return crashed_copy


async def test_points_a_crash_left_staged_are_merged_after_a_restart(
    store: SqliteStorage,
    tenant: Tenant,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashed_copy = await crashed_with_two_staged(store, tenant, client, tmp_path)

    monkeypatch.setattr(_sqlite_staging, "MERGE_IDLE", 0.05)
    restarted = await started(f"sqlite:///{crashed_copy}")
    try:
        for _ in range(500):
            if raw(crashed_copy, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]:
                break
            await asyncio.sleep(0.01)
        assert raw(crashed_copy, "SELECT element_id, revision FROM data_points ORDER BY 1") == [
            ("1", 1),
            ("2", 1),
        ]
    finally:
        await restarted.close()


@pytest.mark.parametrize("before", [False, True], ids=["started-after", "started-before"])
async def test_a_second_process_counts_against_what_the_first_staged(
    store: SqliteStorage, tenant: Tenant, client: Client, before: bool
) -> None:
    # Started before, the second writer has staged rows of its own and knows the staging
    # table: the first one's commit must make it count against that table again.
    other = await started(url_of(store)) if before else None
    try:
        if other is not None:
            assert await ingest(other, tenant, client, "b0", ["9"], 1.0) == counts(created=1)
        await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
        other = other or await started(url_of(store))
        assert await ingest(other, tenant, client, "b2", ["1", "2", "3"], 1.0) == counts(1, 0, 2)
        assert await ingest(other, tenant, client, "b3", ["2"], 7.0) == counts(updated=1)
        # Either process's read merges both processes' staged rows.
        assert await store.count_points(tenant.id, Environment.TESTING) == 3 + before
    finally:
        if other is not None:
            await other.close()
    first = [("1", 1.0, 1), ("2", 7.0, 2), ("3", 1.0, 1)]
    assert raw(store.path, "SELECT element_id, value, revision FROM data_points ORDER BY 1") == (
        [*first, ("9", 1.0, 1)] if before else first
    )


async def test_a_restarted_writer_counts_against_what_a_crash_left_staged(
    store: SqliteStorage, tenant: Tenant, client: Client, tmp_path: Path
) -> None:
    crashed_copy = await crashed_with_two_staged(store, tenant, client, tmp_path)
    restarted = await started(f"sqlite:///{crashed_copy}")  # MERGE_IDLE is an hour here
    try:
        assert await ingest(restarted, tenant, client, "b2", ["1", "2"], 2.0) == counts(updated=2)
        staged = raw(crashed_copy, f"SELECT element_id, revision FROM {STAGING} ORDER BY 1")
    finally:
        await restarted.close()
    assert staged == [("1", 2), ("2", 2)]


async def test_after_a_merge_a_batch_counts_against_the_merged_rows(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await ingest(store, tenant, client, "b1", ["1", "2"], 1.0)
    assert await store.count_points(tenant.id, Environment.TESTING) == 2  # merged
    assert raw(store.path, f"SELECT COUNT(*) FROM {STAGING}") == [(0,)]

    assert await ingest(store, tenant, client, "b2", ["1", "3"], 1.0) == counts(1, 0, 1)
    assert await ingest(store, tenant, client, "b3", ["3", "2"], 4.0) == counts(updated=2)
    assert await store.count_points(tenant.id, Environment.TESTING) == 3
    assert raw(store.path, "SELECT element_id, value, revision FROM data_points ORDER BY 1") == [
        ("1", 1.0, 1),
        ("2", 4.0, 2),
        ("3", 4.0, 2),
    ]


@pytest.mark.parametrize("secure", ["OFF", "ON", "FAST"])
def test_a_merge_frees_the_staging_pages_unzeroed_and_leaves_secure_delete_as_it_was(
    tmp_path: Path, secure: str
) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    columns = "tenant_id, environment, type, context, element_id, kpi, object_type, value, "
    columns += "ts, batch_id, revision, updated_at"
    with sqlite3.connect(tmp_path / "k.db", isolation_level=None) as conn:
        conn.execute(f"PRAGMA secure_delete = {secure}")
        before = conn.execute("PRAGMA secure_delete").fetchone()
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO {STAGING} ({columns}) VALUES (1, 'testing', 'pos', 'sales', ?, "
            "'kpi', 'number', 1.5, 100, 'b1', 1, 1.0)",
            [(f"secret-{n:04}",) for n in range(2000)],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        on_disk = (tmp_path / "k.db").read_bytes().count(b"secret-")
        conn.execute("BEGIN")
        assert _sqlite_staging.merge(conn) == 2000
        conn.execute("COMMIT")
        assert conn.execute("PRAGMA secure_delete").fetchone() == before
        assert conn.execute(f"SELECT COUNT(*) FROM {STAGING}").fetchone() == (0,)
        freed = conn.execute("PRAGMA freelist_count").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert freed > 0
    # The staged copies are still on the freed pages (zeroed, they would be gone), beside
    # the merged ones: what data_points holds now, until the pages are reused.
    assert (tmp_path / "k.db").read_bytes().count(b"secret-") >= on_disk + 2 * 2000, on_disk


def test_counting_seeks_each_id_by_the_key(tmp_path: Path) -> None:
    # Left to itself, SQLite plans this join as a scan of the scope's time index: the
    # whole history of a context for every batch.
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    with sqlite3.connect(tmp_path / "k.db") as conn:
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN {_sqlite_staging._PRIORS_SQL}", (1, "testing", "pos", "c", "[]")
        )
        searches = [row[3] for row in plan if row[3].startswith(("SEARCH", "SCAN"))]
    assert searches
    for step in searches:
        by_key = "USING INDEX ix_data_points_key (element_id=?" in step
        assert step == "SCAN j VIRTUAL TABLE INDEX 1:" or by_key


async def test_a_series_a_rolled_back_job_created_is_created_again(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await ingest(store, tenant, client, "b1", ["1"], 1.0)
    # A new context, so a new series, in a job whose batch record then collides with
    # b1's: the job rolls back, and the series row it created goes with it.
    with pytest.raises(sqlite3.IntegrityError):
        await store.ingest(write(tenant, client, "b1", ["2"], context="bonus"), render)
    assert raw(store.path, "SELECT context FROM series") == [("sales",)]

    result = await store.ingest(write(tenant, client, "b2", ["2"], context="bonus"), render)
    assert result is not None and result[0] == counts(1)
    every_row = f"SELECT series_id FROM data_points UNION ALL SELECT series_id FROM {STAGING}"
    assert raw(
        store.path, f"SELECT s.context FROM ({every_row}) JOIN series AS s ON s.id = series_id"
    ) == [("sales",), ("bonus",)]
    flt = PointFilter(tenant.id, Environment.TESTING, context="bonus", kpis=("sales",))
    found = await store.find_points(flt, after=None, descending=False, limit=10)
    assert [p.element_id for p in found] == ["2"]
