"""SqliteStorage's own machinery: the writer process, group commit, savepoints per batch.

What every store must do (idempotency, admin rows, concurrency in general) is tested
on SQLite and PostgreSQL alike in ``test_store.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import sys
import types
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from kpihub.domain import BatchCounts, Client, Environment, Tenant
from kpihub.errors import StoreUnavailable
from kpihub.ingest import ack
from kpihub.settings import Settings
from kpihub.storage import _sqlite_staging, open_storage
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.migrate import upgrade
from kpihub.storage.sqlite import SqliteStorage
from tests import databases
from tests.integration import writer_jobs
from tests.integration.stores import broken, render, update_same_elements, write

pytestmark = pytest.mark.anyio


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


class Recorder:
    """A store observer that keeps what it is told."""

    def __init__(self) -> None:
        self.commits = 0
        self.failures: list[BaseException] = []

    def store_committed(self, backend: str, seconds: float) -> None:
        self.commits += 1

    def store_failed(self, backend: str, error: BaseException) -> None:
        self.failures.append(error)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def store(url: str, recorder: Recorder) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(url, synchronous="normal", observer=recorder)
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
    """An ingest whose render holds the writer process, so later jobs queue up as one group."""

    def __init__(self, store: SqliteStorage, tenant: Tenant, client: Client) -> None:
        self.entered = store.path.with_name("blocker-entered")
        self.release = store.path.with_name("blocker-release")
        hold = partial(writer_jobs.hold, self.entered, self.release)
        self.task = asyncio.ensure_future(
            store.ingest(write(tenant, client, "blocker", ["b"]), hold)
        )

    async def holding(self) -> None:
        assert await asyncio.to_thread(writer_jobs.wait_until_exists, self.entered)

    async def let_go(self) -> None:
        await asyncio.sleep(0.05)  # every task started so far has sent its job
        self.release.touch()


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

    # One group: a batch, the job that ends the transaction, another batch.
    victim = asyncio.ensure_future(store.ingest(write(tenant, client, "victim", ["v"]), render))
    doomed = asyncio.ensure_future(store._write(writer_jobs.ends_transaction))
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


# -- the writer process ----------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_writes_run_in_a_process_of_their_own(store: SqliteStorage) -> None:
    assert store._writer is not None
    pid = await store._write(writer_jobs.process_id)
    assert pid == store._writer.pid
    assert pid != os.getpid()


async def test_every_connection_uses_one_sqlite_library(store: SqliteStorage) -> None:
    """The writer and the server's own connections use the same library (two copies in
    one process break each other's locks): the wheel's where it is installed."""
    module, version, secure = await store._write(writer_jobs.library)
    reader = store._reader()
    assert type(reader).__module__ == module
    assert reader.execute("SELECT sqlite_version()").fetchone()[0] == version
    assert version == sqlite3.sqlite_version
    assert secure == 1  # deleted rows are zeroed, whatever the library's default
    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert module.startswith("pysqlite3"), "pip install pysqlite3-binary"
        assert sqlite3.sqlite_version_info >= (3, 45)


def _mapped(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA mmap_size").fetchone()[0])


@pytest.mark.parametrize("mmap_size", [0, 64 << 20, None])
async def test_only_the_query_threads_map_the_database(url: str, mmap_size: int | None) -> None:
    """Queries (on their threads) map ``KPIHUB_SQLITE_MMAP_SIZE`` bytes of the file, 1 GiB
    unless set; the inline reader, the writer process and the checkpointer map nothing."""
    settings = Settings(database_url=url, sqlite_synchronous="normal")
    if mmap_size is not None:
        settings = settings.model_copy(update={"sqlite_mmap_size": mmap_size})
    storage = open_storage(settings)
    assert isinstance(storage, SqliteStorage)
    await storage.start()
    try:
        want = 1 << 30 if mmap_size is None else mmap_size
        assert await storage._query(_mapped) == want
        assert _mapped(storage._reader()) == 0
        assert await storage._write(writer_jobs.mapped) == 0
        assert storage._checkpointer is not None
        assert _mapped(storage._checkpointer._conn) == 0
    finally:
        await storage.close()


async def test_big_jobs_and_answers_cross_whole(store: SqliteStorage) -> None:
    data = os.urandom(3_000_000)  # many socket reads each way
    answers = await asyncio.gather(
        *(store._write(partial(writer_jobs.echo, data)) for _ in range(3))
    )
    assert answers == [data, data, data]


async def test_an_error_that_cannot_cross_is_reported_as_a_write_failure(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    with pytest.raises(StoreUnavailable, match="cannot cross"):
        await store._write(writer_jobs.raise_unpicklable)
    assert await store.ingest(write(tenant, client, "after", ["a"]), render) is not None


async def test_a_killed_writer_fails_what_it_held_and_the_next_write_starts_another(
    store: SqliteStorage,
    tenant: Tenant,
    client: Client,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await store.ingest(write(tenant, client, "before", ["a"]), render) is not None
    blocker = Blocker(store, tenant, client)
    await blocker.holding()
    waiting = asyncio.ensure_future(store.ingest(write(tenant, client, "lost", ["l"]), render))
    await asyncio.sleep(0.05)
    assert store._writer is not None and store._writer.pid is not None
    old = store._writer.pid
    os.kill(old, signal.SIGKILL)
    for task in (blocker.task, waiting):
        with pytest.raises(StoreUnavailable, match="writer process stopped"):
            await asyncio.wait_for(task, 5)
    # The operator hears of it: an error line and kpihub_store_errors_total.
    assert [type(e).__name__ for e in recorder.failures] == ["WriterStopped"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        f"The SQLite writer process {old} stopped unexpectedly; 2 request(s) get 503. "
        "A new writer starts with the next write."
    ]

    assert await store.ingest(write(tenant, client, "after", ["n"]), render) is not None
    assert store._writer.pid not in (None, old)
    assert rows(store, "SELECT id FROM batches ORDER BY id") == [("after",), ("before",)]
    assert await store.count_points(tenant.id, Environment.TESTING) == 2


async def test_closing_the_store_merges_and_stops_its_writer(
    store: SqliteStorage,
    tenant: Tenant,
    client: Client,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert store._writer is not None and store._writer.pid is not None
    pid = store._writer.pid
    assert await store.ingest(write(tenant, client, "b", ["1", "2"]), render) is not None
    await store.close()
    assert not _alive(pid)
    await asyncio.sleep(0.05)  # the socket's end reaches the event loop after the exit
    assert recorder.failures == []  # an intended stop is no failure
    assert recorder.commits >= 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM data_points_incoming").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM data_points").fetchone() == (2,)


async def test_a_job_the_writer_cannot_import_fails_alone(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    # As a render defined in a script's __main__ would: the server has it, the writer not.
    here_only = types.ModuleType("kpihub_tests_server_only")
    exec("def render(counts):\n    return b'never'", here_only.__dict__)  # noqa: S102
    sys.modules[here_only.__name__] = here_only
    try:
        lost = asyncio.ensure_future(
            store.ingest(write(tenant, client, "x", ["x"]), here_only.render)
        )
        kept = asyncio.ensure_future(store.ingest(write(tenant, client, "k", ["k"]), render))
        with pytest.raises(ModuleNotFoundError, match="kpihub_tests_server_only"):
            await lost
        assert await kept is not None
    finally:
        del sys.modules[here_only.__name__]
    assert rows(store, "SELECT id FROM batches") == [("k",)]


async def test_commits_after_a_merge_are_fsynced_again(
    url: str, tenant: Tenant, client: Client
) -> None:
    # A merge commits without fsync (it only moves durable rows); the writer's own
    # commits must go back to the configured durability right after it.
    storage = SqliteStorage(url, synchronous="full")
    await storage.start()
    try:
        assert await storage.ingest(write(tenant, client, "b", ["1"]), render) is not None
        await asyncio.sleep(_sqlite_staging.MERGE_IDLE * 4)  # the writer merges when idle
        with sqlite3.connect(storage.path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM data_points_incoming").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM data_points").fetchone() == (1,)
        assert await storage._write(writer_jobs.synchronous) == 2  # FULL
    finally:
        await storage.close()


async def test_the_writer_keeps_statement_journals_in_memory(store: SqliteStorage) -> None:
    assert await store._write(writer_jobs.temp_store) == 2  # MEMORY, not temporary files


async def test_the_writer_renders_acks_without_the_web_stack(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    # What the writer unpickles it imports: the real ACK render must not drag in the
    # HTTP app (tens of MB per writer, seen as the 10 MB body's peak RSS).
    result = await store.ingest(write(tenant, client, "b", ["1"]), ack.render("b"))
    assert result is not None
    assert json.loads(result[1])["batch_id"] == "b"
    heavy = ("starlette", "uvicorn", "pydantic", "kpihub.settings", "kpihub.ingest.routes")
    assert await store._write(partial(writer_jobs.imports, heavy)) == []


# -- checkpoints -------------------------------------------------------------------------


def _wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one at every restart."""
    with path.with_name(path.name + "-wal").open("rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


async def test_the_wal_starts_over_while_batches_keep_coming(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    # Eight writers that never pause: the writer process is never idle, so a passive
    # checkpoint alone never catches up and the WAL would only grow.
    loop = asyncio.get_running_loop()
    stop = loop.time() + 2.5
    sent = 0

    async def keep_writing(n: int) -> None:
        nonlocal sent
        while loop.time() < stop:
            ids = [f"{n}-{sent}-{i}" for i in range(200)]
            sent += 1
            assert await store.ingest(write(tenant, client, f"b{n}-{sent}", ids), render)

    first = None
    while first is None:  # the WAL exists from the first commit on
        assert await store.ingest(write(tenant, client, "first", ["f"]), render)
        first = _wal_restarts(store.path)
    await asyncio.gather(*(keep_writing(n) for n in range(8)))
    restarts = _wal_restarts(store.path) - first
    assert sent > 200  # the load was real
    # The writer steps in after a second without a restart (WAL_RESTART_AFTER).
    assert restarts >= 2, f"the WAL restarted {restarts} times in 2.5 s of writes"
