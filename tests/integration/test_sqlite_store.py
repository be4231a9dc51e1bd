"""SqliteStorage on a real file: group commit, per-batch rollback, idempotency, admin rows."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kpihub.domain import (
    BatchCounts,
    BatchWrite,
    Client,
    DataPoint,
    Environment,
    ParsedBatch,
    SigningKey,
    Tenant,
)
from kpihub.errors import Conflict, NotFound, StoreUnavailable
from kpihub.storage.migrate import upgrade
from kpihub.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio

RECEIVED_AT = 1_700_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


@pytest.fixture
async def tenant(store: SqliteStorage) -> Tenant:
    return await store.create_tenant("acme", "UTC", 1)


@pytest.fixture
async def client(store: SqliteStorage, tenant: Tenant) -> Client:
    return await store.create_client(
        tenant_id=tenant.id,
        environment=Environment.TESTING,
        name="pos",
        client_id="client-1",
        secret_hash=b"\x00" * 32,
        scopes=("kpi:write",),
        rate_limit=None,
        token_ttl=None,
        now=1,
    )


def rows(store: SqliteStorage, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Read through a connection of our own, as another process would."""
    with sqlite3.connect(store.path) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def point(element_id: str, value: float = 1.0) -> DataPoint:
    return DataPoint(
        element_id, "sales", "number", value, "Eur", 1568120963, None, None, "u1", None
    )


def write(
    tenant: Tenant,
    client: Client,
    batch_id: str,
    ids: list[str],
    *,
    value: float = 1.0,
    context: str = "sales",
    key: str | None = None,
    request_hash: str | None = None,
) -> BatchWrite:
    return BatchWrite(
        batch_id=batch_id,
        tenant_id=tenant.id,
        environment=client.environment,
        client_pk=client.id,
        batch=ParsedBatch("acme-pos", "1.0.0", context, [point(i, value) for i in ids]),
        raw_body=b"raw " + batch_id.encode(),
        received_at=RECEIVED_AT,
        idempotency_key=key,
        request_hash=request_hash if key else None,
    )


def render(counts: BatchCounts) -> bytes:
    return f"{counts.received}/{counts.created}/{counts.updated}/{counts.unchanged}".encode()


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


async def test_concurrent_batches_all_commit(
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


async def test_concurrent_updates_of_the_same_elements_count_once_each(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    ids = [str(i) for i in range(10)]
    results = await asyncio.gather(
        *(
            store.ingest(write(tenant, client, f"b{n}", ids, value=float(n)), render)
            for n in range(20)
        )
    )
    counts = [r[0] for r in results if r is not None]
    assert sum(c.created for c in counts) == 10
    assert sum(c.created + c.updated for c in counts) == 10 * 20
    # The last batch queued is the last applied.
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


# -- idempotency -----------------------------------------------------------------------


async def test_used_idempotency_key_returns_none_and_writes_nothing(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    first = await store.ingest(
        write(tenant, client, "first", ["1", "2"], key="k", request_hash="h1"), render
    )
    assert first is not None
    again = await store.ingest(
        write(tenant, client, "again", ["3"], value=5.0, key="k", request_hash="h2"), render
    )
    assert again is None
    assert rows(store, "SELECT id FROM batches") == [("first",)]
    assert rows(store, "SELECT element_id FROM data_points ORDER BY 1") == [("1",), ("2",)]
    stored = await store.idempotent_response(client.id, "k", 0)
    assert stored is not None
    assert (stored.request_hash, stored.status, stored.body) == ("h1", 200, first[1])
    # Keys are per client.
    assert await store.idempotent_response(client.id + 1, "k", 0) is None


async def test_idempotency_race_in_one_group_writes_once(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    results = await asyncio.gather(
        *(
            store.ingest(write(tenant, client, f"b{n}", ["1"], key="k", request_hash="h"), render)
            for n in range(5)
        )
    )
    assert sum(r is not None for r in results) == 1
    assert rows(store, "SELECT COUNT(*) FROM batches") == [(1,)]
    assert rows(store, "SELECT COUNT(*) FROM idempotency_keys") == [(1,)]


async def test_expired_idempotency_key_can_be_used_again(
    store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    old = write(tenant, client, "old", ["1"], key="k", request_hash="h1")
    assert await store.ingest(old, render) is not None
    new = write(tenant, client, "new", ["1"], value=2.0, key="k", request_hash="h2")
    new.received_at = RECEIVED_AT + 10
    new.idempotency_since = int(RECEIVED_AT) + 1
    assert await store.ingest(new, render) is not None
    assert await store.idempotent_response(client.id, "k", int(RECEIVED_AT) + 1) is not None
    assert rows(store, "SELECT request_hash FROM idempotency_keys") == [("h2",)]


# -- tenants, clients, keys ------------------------------------------------------------


async def test_create_tenant_twice_is_a_conflict(store: SqliteStorage, tenant: Tenant) -> None:
    with pytest.raises(Conflict, match="acme"):
        await store.create_tenant("acme", "Europe/Copenhagen", 2)
    assert await store.get_tenant("acme") == tenant
    assert await store.list_tenants() == [tenant]


async def test_create_integration_twice_is_a_conflict(store: SqliteStorage, tenant: Tenant) -> None:
    await store.create_integration(tenant.id, "acme-pos", 1)
    with pytest.raises(Conflict):
        await store.create_integration(tenant.id, "acme-pos", 2)
    assert await store.integration_exists(tenant.id, "acme-pos")
    assert not await store.integration_exists(tenant.id + 1, "acme-pos")


async def test_revoke_client_voids_its_tokens(store: SqliteStorage, client: Client) -> None:
    now = int(time.time())
    revoked = await store.revoke_client(client.client_id, now)
    assert revoked.revoked_at == now
    assert revoked.tokens_valid_after > now  # a token issued in this very second is void too
    assert not revoked.active
    again = await store.revoke_client(client.client_id, now + 100)
    assert again.revoked_at == now  # the first revocation time is kept
    fetched = await store.get_client(client.client_id)
    assert fetched == again
    with pytest.raises(NotFound):
        await store.revoke_client("no-such-client", now)


async def test_signing_keys_round_trip(store: SqliteStorage) -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1"}
    first = SigningKey("k1", b"-----BEGIN PRIVATE KEY-----\n\x00\xff", jwk, 10)
    second = SigningKey("k2", b"pem-2", {**jwk, "kid": "k2"}, 20, retired_at=30)
    await store.add_signing_key(second)
    await store.add_signing_key(first)
    assert await store.signing_keys() == [first, second]


async def test_a_second_storage_on_the_same_file_sees_committed_data(
    url: str, store: SqliteStorage, tenant: Tenant, client: Client
) -> None:
    assert await store.ingest(write(tenant, client, "b", ["1", "2"]), render) is not None
    other = SqliteStorage(url)
    await other.start()
    try:
        assert await other.count_points(tenant.id, Environment.TESTING) == 2
        assert await other.count_points(tenant.id, Environment.PRODUCTION) == 0
    finally:
        await other.close()
