"""SqliteStorage's own machinery: the writer thread, group commit, savepoints per batch.

What every store must do (idempotency, admin rows, concurrency in general) is tested
on SQLite and PostgreSQL alike in ``test_store.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kpihub.domain import BatchCounts, Client, Environment, Tenant
from kpihub.errors import StoreUnavailable
from kpihub.storage.migrate import upgrade
from kpihub.storage.sqlite import SqliteStorage
from tests import databases
from tests.integration.stores import render, update_same_elements, write

pytestmark = pytest.mark.anyio


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(url, synchronous="normal")
    await storage.start()
    try:
        yield storage
    finally:
        await storage.close()


def rows(store: SqliteStorage, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Read through a connection of our own, as another process would."""
    if "data_points" in sql:
        databases.wait_merged(store.path)
    with sqlite3.connect(store.path) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


class Blocker:
    """An ingest whose render holds the writer thread, so later jobs queue up as one group."""

    def __init__(self, store: SqliteStorage, tenant: Tenant, client: Client) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.task = asyncio.ensure_future(
            store.ingest(write(tenant, client, "blocker", ["b"]), self._hold)
        )

    def _hold(self, counts: BatchCounts) -> bytes:
        self.entered.set()
        assert self.release.wait(10)
        return render(counts)

    async def holding(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)

    async def let_go(self) -> None:
        await asyncio.sleep(0.01)  # every task started so far has submitted its job
        self.release.set()


# -- group commit ----------------------------------------------------------------------


async def test_concurrent_batches_commit_as_one_group(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    blocker = Blocker(store, tenant, client)
    await blocker.holding()
    batches = [
        store.ingest(
            write(tenant, client, f"batch-{n:02}", [f"{n}-{i}" for i in range(20)]), render
        )
        for n in range(50)
    ]
    gathered = asyncio.gather(*batches)
    await blocker.let_go()
    results = await gathered
    assert await blocker.task is not None
    assert all(r is not None for r in results)
    for result in results:
        assert result is not None
        counts, body = result
        assert counts == BatchCounts(received=20, created=20, updated=0, unchanged=0)
        assert body == b"20/20/0/0"
    assert await store.count_points(tenant.id, Environment.TESTING) == 50 * 20 + 1
    assert rows(store, "SELECT COUNT(*) FROM batches WHERE http_status = 200") == [(51,)]


async def test_concurrent_updates_apply_in_queue_order(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await update_same_elements(store, tenant, client)
    # The last batch queued is the last applied (one writer, in queue order).
    assert rows(store, "SELECT DISTINCT value FROM data_points") == [(19.0,)]


async def test_a_failing_batch_rolls_back_alone(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    await store.ingest(write(tenant, client, "taken", ["t"]), render)
    blocker = Blocker(store, tenant, client)
    await blocker.holding()

    def broken(counts: BatchCounts) -> bytes:
        raise RuntimeError("render failed")

    before = asyncio.ensure_future(
        store.ingest(write(tenant, client, "ok-1", ["a1", "a2"]), render)
    )
    # Its data points are upserted before the batch row fails on the duplicate id.
    duplicate = asyncio.ensure_future(
        store.ingest(write(tenant, client, "taken", ["d1", "d2", "t"], value=9.0), render)
    )
    failing_render = asyncio.ensure_future(store.ingest(write(tenant, client, "r", ["r1"]), broken))
    after = asyncio.ensure_future(store.ingest(write(tenant, client, "ok-2", ["c1"]), render))
    await blocker.let_go()

    assert await blocker.task is not None
    assert await before is not None and await after is not None
    with pytest.raises(sqlite3.IntegrityError):
        await duplicate
    with pytest.raises(RuntimeError, match="render failed"):
        await failing_render

    stored = {r[0]: r[1] for r in rows(store, "SELECT element_id, value FROM data_points")}
    assert stored == {"t": 1.0, "b": 1.0, "a1": 1.0, "a2": 1.0, "c1": 1.0}
    batches = {r[0] for r in rows(store, "SELECT id FROM batches")}
    assert batches == {"taken", "blocker", "ok-1", "ok-2"}


async def test_the_writer_survives_a_job_that_ends_the_transaction(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    # SQLite rolls the whole transaction back on some errors (SQLITE_FULL, IOERR,
    # BUSY...), after which "ROLLBACK TO" has no savepoint to go back to. That must
    # fail the group's requests, not kill the writer thread and hang every request.
    blocker = Blocker(store, tenant, client)
    await blocker.holding()

    def ends_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    # One group: a batch, the job that ends the transaction, another batch.
    victim = asyncio.ensure_future(store.ingest(write(tenant, client, "victim", ["v"]), render))
    doomed = asyncio.ensure_future(store._write(ends_transaction))
    later = asyncio.ensure_future(store.ingest(write(tenant, client, "later", ["l"]), render))
    await blocker.let_go()
    assert await asyncio.wait_for(blocker.task, 5) is not None
    # The victim's rows were rolled back with the transaction: it must not be told
    # they are stored.
    for task in (victim, doomed, later):
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(task, 5)
    assert rows(store, "SELECT id FROM batches") == [("blocker",)]
    result = await asyncio.wait_for(store.ingest(write(tenant, client, "next", ["n"]), render), 5)
    assert result is not None
    assert rows(store, "SELECT id FROM batches ORDER BY id") == [("blocker",), ("next",)]
    assert await store.count_points(tenant.id, Environment.TESTING) == 2


async def test_an_inline_read_that_fails_is_a_store_outage(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    # What another process can do to the file under a running server.
    with sqlite3.connect(store.path) as other:
        other.execute("DROP TABLE revoked_tokens")

    with pytest.raises(StoreUnavailable, match="cannot be read: no such table: revoked_tokens"):
        await store.bearer_context(tenant.name, client.client_id, "some-jti")
    with pytest.raises(StoreUnavailable, match="cannot be read"):
        await store.is_token_revoked("some-jti")
    # Reads that do not touch the missing table still work.
    assert (await store.get_tenant(tenant.name)) == tenant
