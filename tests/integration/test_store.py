"""Every store, SQLite and PostgreSQL, through the storage protocol alone.

What is only about SQLite's internals (the writer thread, group commit, savepoints
inside one group) is in ``test_sqlite_store.py``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from kpihub.domain import (
    BatchCounts,
    BatchWrite,
    BearerContext,
    Client,
    DataPoint,
    Environment,
    NewClient,
    ParsedBatch,
    PointFilter,
    RequestRecord,
    SigningKey,
    Tenant,
)
from kpihub.errors import Conflict, NotFound
from kpihub.settings import Settings
from kpihub.storage import Storage, open_storage
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.migrate import upgrade
from tests import databases
from tests.integration.stores import RECEIVED_AT, broken, render, update_same_elements, write

pytestmark = pytest.mark.anyio


def open_store(url: str) -> Storage:
    return open_storage(Settings(database_url=url, sqlite_synchronous="normal"))


@pytest.fixture
def url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@asynccontextmanager
async def started_store(url: str) -> AsyncIterator[Storage]:
    storage = open_store(url)
    await storage.start()
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def store(url: str) -> AsyncIterator[Storage]:
    async with started_store(url) as storage:
        yield storage


@pytest.fixture
async def other_node(url: str) -> AsyncIterator[Storage]:
    """A second store on the same database, as another server process would have."""
    async with started_store(url) as storage:
        yield storage


def rows(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Read through a connection of our own, as another process would."""
    return databases.rows(url, sql, *params)


# -- concurrent batches ----------------------------------------------------------------


async def test_concurrent_batches_all_commit(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    results = await asyncio.gather(
        *(
            store.ingest(
                write(tenant, client, f"batch-{n:02}", [f"{n}-{i}" for i in range(20)]), render
            )
            for n in range(50)
        )
    )
    for result in results:
        assert result is not None
        counts, body = result
        assert counts == BatchCounts(received=20, created=20, updated=0, unchanged=0)
        assert body == b"20/20/0/0"
    assert await store.count_points(tenant.id, Environment.TESTING) == 50 * 20
    assert rows(url, "SELECT COUNT(*) FROM batches WHERE http_status = 200") == [(50,)]


async def test_concurrent_updates_of_the_same_elements_count_once_each(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    counts = await update_same_elements(store, tenant, client)
    assert len(counts) == 20
    # Whole batches, never a mix: every element holds the value of the same batch.
    (values,) = rows(url, "SELECT COUNT(DISTINCT value), MIN(value) FROM data_points")
    assert values[0] == 1 and values[1] in {float(n) for n in range(20)}
    assert rows(url, "SELECT DISTINCT revision FROM data_points") == [(20,)]


async def test_overlapping_batches_in_any_order_all_commit(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    # Batches that share elements, each listing them in its own order: on PostgreSQL
    # each takes row locks in its own transaction, so an unlucky order would deadlock.
    shuffle = random.Random(20240611).shuffle
    batches: list[list[str]] = []
    for n in range(20):
        ids = [f"e{i:02}" for i in range(n % 5, 40, 1 + n % 3)]
        shuffle(ids)
        batches.append(ids)
    results = await asyncio.gather(
        *(
            store.ingest(write(tenant, client, f"b{n:02}", ids, value=float(n)), render)
            for n, ids in enumerate(batches)
        )
    )
    counts = [r[0] for r in results if r is not None]
    assert len(counts) == len(batches)  # none failed, none was lost
    touched = {i for ids in batches for i in ids}
    total = sum(len(ids) for ids in batches)
    assert [c.received for c in counts] == [len(ids) for ids in batches]
    assert sum(c.created for c in counts) == len(touched)
    # Every batch has its own value, so every write of an existing element changes it.
    assert sum(c.updated for c in counts) == total - len(touched)
    assert sum(c.unchanged for c in counts) == 0
    assert await store.count_points(tenant.id, Environment.TESTING) == len(touched)
    assert rows(url, "SELECT SUM(revision) FROM data_points") == [(total,)]
    assert rows(url, "SELECT COUNT(*) FROM batches") == [(len(batches),)]


async def test_a_failing_render_writes_nothing(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    with pytest.raises(RuntimeError, match="render failed"):
        await store.ingest(write(tenant, client, "r", ["r1", "r2"]), broken)
    assert rows(url, "SELECT COUNT(*) FROM data_points") == [(0,)]
    assert rows(url, "SELECT COUNT(*) FROM batches") == [(0,)]
    assert await store.ingest(write(tenant, client, "ok", ["a"]), render) is not None
    assert rows(url, "SELECT element_id FROM data_points") == [("a",)]


async def test_a_batch_that_fails_midway_writes_nothing(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    await store.ingest(write(tenant, client, "taken", ["t"]), render)
    # Its data points are upserted before the batch row fails on the duplicate id.
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await store.ingest(write(tenant, client, "taken", ["d1", "t"], value=9.0), render)
    assert rows(url, "SELECT element_id, value FROM data_points") == [("t", 1.0)]
    assert rows(url, "SELECT id FROM batches") == [("taken",)]


# -- idempotency -----------------------------------------------------------------------


async def test_used_idempotency_key_returns_none_and_writes_nothing(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    first = await store.ingest(
        write(tenant, client, "first", ["1", "2"], key="k", request_hash="h1"), render
    )
    assert first is not None
    again = await store.ingest(
        write(tenant, client, "again", ["3"], value=5.0, key="k", request_hash="h2"), render
    )
    assert again is None
    assert rows(url, "SELECT id FROM batches") == [("first",)]
    assert rows(url, "SELECT element_id FROM data_points ORDER BY 1") == [("1",), ("2",)]
    stored = await store.idempotent_response(client.id, "k", 0)
    assert stored is not None
    assert (stored.request_hash, stored.status, stored.body) == ("h1", 200, first[1])
    # Keys are per client.
    assert await store.idempotent_response(client.id + 1, "k", 0) is None


async def test_idempotency_race_writes_once(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    results = await asyncio.gather(
        *(
            store.ingest(write(tenant, client, f"b{n}", ["1"], key="k", request_hash="h"), render)
            for n in range(5)
        )
    )
    assert sum(r is not None for r in results) == 1
    assert rows(url, "SELECT COUNT(*) FROM batches") == [(1,)]
    assert rows(url, "SELECT COUNT(*) FROM idempotency_keys") == [(1,)]


async def test_idempotency_race_between_two_nodes_writes_once(
    url: str, store: Storage, other_node: Storage, tenant: Tenant, client: Client
) -> None:
    # The same retried request reaching two server processes at once, key by key.
    keys = [f"key-{n}" for n in range(10)]
    results = await asyncio.gather(
        *(
            node.ingest(
                write(tenant, client, f"{name}-{key}", ["1", key], key=key, request_hash="h"),
                render,
            )
            for key in keys
            for name, node in (("a", store), ("b", other_node))
        )
    )
    winners: dict[str, tuple[str, bytes]] = {}
    for n, key in enumerate(keys):
        a, b = results[2 * n : 2 * n + 2]
        assert (a is None) != (b is None), (key, a, b)
        won = a if a is not None else b
        assert won is not None
        winners[key] = ("a" if a is not None else "b", won[1])
    assert rows(url, "SELECT COUNT(*) FROM batches") == [(len(keys),)]
    assert rows(url, "SELECT COUNT(*) FROM idempotency_keys") == [(len(keys),)]
    # Only the winners' points were written: one per key, plus the shared element.
    assert await store.count_points(tenant.id, Environment.TESTING) == len(keys) + 1
    for key, (node, body) in winners.items():
        # Either node replays exactly what the winner answered.
        for replaying in (store, other_node):
            stored = await replaying.idempotent_response(client.id, key, 0)
            assert stored is not None and stored.body == body
        assert rows(url, "SELECT id FROM batches WHERE idempotency_key = ?", key) == [
            (f"{node}-{key}",)
        ]


async def test_expired_idempotency_key_can_be_used_again(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    old = write(tenant, client, "old", ["1"], key="k", request_hash="h1")
    assert await store.ingest(old, render) is not None
    new = write(tenant, client, "new", ["1"], value=2.0, key="k", request_hash="h2")
    new.received_at = RECEIVED_AT + 10
    new.idempotency_since = int(RECEIVED_AT) + 1
    assert await store.ingest(new, render) is not None
    assert await store.idempotent_response(client.id, "k", int(RECEIVED_AT) + 1) is not None
    assert rows(url, "SELECT request_hash FROM idempotency_keys") == [("h2",)]


async def test_purge_expired(url: str, store: Storage, tenant: Tenant, client: Client) -> None:
    now = int(time.time())
    old = write(tenant, client, "old", ["1"], key="old", request_hash="h")
    new = write(tenant, client, "new", ["2"], key="new", request_hash="h")
    new.received_at = RECEIVED_AT + 100
    assert await store.ingest(old, render) is not None
    assert await store.ingest(new, render) is not None
    await store.revoke_token("expired", client.id, now + 10)
    await store.revoke_token("valid", client.id, now + 1000)
    assert await store.purge_expired(int(RECEIVED_AT) + 50, now + 500) == 2
    assert rows(url, "SELECT key FROM idempotency_keys") == [("new",)]
    assert not await store.is_token_revoked("expired")
    assert await store.is_token_revoked("valid")
    # The data and the batches themselves are kept.
    assert rows(url, "SELECT COUNT(*) FROM batches") == [(2,)]


# -- rejected requests -----------------------------------------------------------------


async def test_rejected_requests_are_recorded(
    url: str, store: Storage, tenant: Tenant, client: Client
) -> None:
    await store.record_request(
        RequestRecord(
            batch_id="rejected",
            tenant_id=tenant.id,
            environment=client.environment,
            client_pk=client.id,
            endpoint="kpi",
            http_status=422,
            received_at=RECEIVED_AT + 0.5,
            duration_ms=1.25,
            raw_body=b"\x00\xffbody",
            body_truncated=True,
            errors={"data.0.value": ["bad"]},
            message="bad",
        )
    )
    await store.record_request(
        RequestRecord(
            batch_id="anonymous",
            tenant_id=tenant.id,
            environment=None,
            client_pk=None,
            endpoint="token",
            http_status=401,
            received_at=RECEIVED_AT,
            duration_ms=0.5,
            raw_body=b"",
            body_truncated=False,
        )
    )
    assert databases.records(
        url,
        "SELECT id, environment, client_pk, endpoint, http_status, received_at, duration_ms, "
        "raw_body, body_truncated, errors, message, received, created FROM batches ORDER BY id",
    ) == [
        {
            "id": "anonymous",
            "environment": None,
            "client_pk": None,
            "endpoint": "token",
            "http_status": 401,
            "received_at": RECEIVED_AT,
            "duration_ms": 0.5,
            "raw_body": b"",
            "body_truncated": 0,
            "errors": None,
            "message": "",
            "received": 0,
            "created": 0,
        },
        {
            "id": "rejected",
            "environment": "testing",
            "client_pk": client.id,
            "endpoint": "kpi",
            "http_status": 422,
            "received_at": RECEIVED_AT + 0.5,
            "duration_ms": 1.25,
            "raw_body": b"\x00\xffbody",
            "body_truncated": 1,
            "errors": '{"data.0.value": ["bad"]}',
            "message": "bad",
            "received": 0,
            "created": 0,
        },
    ]


# -- tenants, clients, keys ------------------------------------------------------------


async def test_ping(store: Storage) -> None:
    await store.ping()


async def test_create_tenant_twice_is_a_conflict(store: Storage, tenant: Tenant) -> None:
    with pytest.raises(Conflict, match="acme"):
        await store.create_tenant("acme", "Europe/Copenhagen", 2)
    assert await store.get_tenant("acme") == tenant
    assert await store.get_tenant("nobody") is None
    beta = await store.create_tenant("beta", "Europe/Copenhagen", 3)
    assert await store.list_tenants() == [tenant, beta]


async def test_create_integration_twice_is_a_conflict(store: Storage, tenant: Tenant) -> None:
    pos = await store.create_integration(tenant.id, "acme-pos", 1)
    with pytest.raises(Conflict):
        await store.create_integration(tenant.id, "acme-pos", 2)
    hr = await store.create_integration(tenant.id, "acme-hr", 3)
    assert await store.integration_exists(tenant.id, "acme-pos")
    assert not await store.integration_exists(tenant.id + 1, "acme-pos")
    assert await store.list_integrations(tenant.id) == [hr, pos]
    assert await store.list_integrations(tenant.id + 1) == []


async def test_client_round_trip_and_updates(
    store: Storage, tenant: Tenant, client: Client
) -> None:
    assert (client.client_id, client.environment, client.scopes) == (
        "client-1",
        Environment.TESTING,
        ("kpi:write",),
    )
    assert (client.secret_hash, client.old_secret_hash) == (b"\x00" * 32, None)
    assert (client.rate_limit, client.token_ttl, client.revoked_at) == (None, None, None)
    assert client.created_at == 1 and client.last_used_at is None
    assert await store.get_client("client-1") == client
    assert await store.get_client("nobody") is None

    live = await store.create_client(
        NewClient(
            tenant_id=tenant.id,
            environment=Environment.PRODUCTION,
            name="erp",
            client_id="client-2",
            secret_hash=b"\xff" * 32,
            scopes=("kpi:write", "kpi:read"),
            rate_limit=300,
            token_ttl=120,
            created_at=2,
        )
    )
    assert (live.scopes, live.rate_limit, live.token_ttl) == (("kpi:write", "kpi:read"), 300, 120)
    assert await store.list_clients(tenant.id) == [live, client]  # by environment, then age
    assert await store.list_clients(tenant.id + 1) == []

    rotated = await store.rotate_secret("client-1", b"\x01" * 32)
    assert (rotated.secret_hash, rotated.old_secret_hash) == (b"\x01" * 32, b"\x00" * 32)
    retired = await store.retire_old_secret("client-1")
    assert (retired.secret_hash, retired.old_secret_hash) == (b"\x01" * 32, None)
    assert (await store.set_rate_limit("client-1", 42)).rate_limit == 42
    assert (await store.set_rate_limit("client-1", None)).rate_limit is None
    await store.touch_client(client.id, 99)
    touched = await store.get_client("client-1")
    assert touched is not None and touched.last_used_at == 99
    for change in (
        store.rotate_secret("nobody", b""),
        store.retire_old_secret("nobody"),
        store.set_rate_limit("nobody", 1),
    ):
        with pytest.raises(NotFound):
            await change


async def test_revoke_client_voids_its_tokens(store: Storage, client: Client) -> None:
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


async def test_token_revocation(store: Storage, client: Client) -> None:
    expires = int(time.time()) + 3600
    assert not await store.is_token_revoked("jti-1")
    await store.revoke_token("jti-1", client.id, expires)
    await store.revoke_token("jti-1", client.id, expires)  # twice is harmless
    assert await store.is_token_revoked("jti-1")
    assert not await store.is_token_revoked("jti-2")


async def test_bearer_context_follows_what_another_node_changes(
    store: Storage, other_node: Storage, tenant: Tenant, client: Client
) -> None:
    # The same row gives the same context object; every change made elsewhere shows at
    # the next read.
    async def read() -> BearerContext | None:
        return await store.bearer_context(tenant.name, client.client_id, "jti-b")

    first = await read()
    assert first is not None and first.client == client and not first.token_revoked
    assert await read() is first
    await other_node.set_rate_limit(client.client_id, 7)
    limited = await read()
    assert limited is not None and limited.client is not None
    assert limited.client.rate_limit == 7
    await other_node.revoke_token("jti-b", client.id, int(time.time()) + 3600)
    revoked = await read()
    assert revoked is not None and revoked.token_revoked
    await other_node.revoke_client(client.client_id, int(time.time()))
    gone = await read()
    assert gone is not None and gone.client is not None and not gone.client.active
    await other_node.set_retention(tenant.id, 30)
    kept = await read()
    assert kept is not None and kept.tenant.retention_days == 30
    stranger = await store.bearer_context(tenant.name, "no-such-client", "jti-b")
    assert stranger is not None and stranger.client is None and stranger.tenant == kept.tenant


async def test_keys_no_store_can_hold_find_nothing(
    store: Storage, tenant: Tenant, client: Client
) -> None:
    # PostgreSQL text cannot hold U+0000; looking such a key up must find nothing
    # (as on SQLite), not fail: a client_id comes straight from a token request.
    assert await store.get_client(client.client_id + "\x00") is None
    assert await store.get_tenant("acme\x00") is None
    await store.create_integration(tenant.id, "acme-pos", 1)
    assert not await store.integration_exists(tenant.id, "acme-pos\x00")
    assert not await store.is_token_revoked("jti\x00")
    assert await store.idempotent_response(client.id, "k\x00", 0) is None


async def test_signing_keys_round_trip(store: Storage) -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1"}
    first = SigningKey("k1", b"-----BEGIN PRIVATE KEY-----\n\x00\xff", jwk, 10)
    second = SigningKey("k2", b"pem-2", {**jwk, "kid": "k2"}, 20, retired_at=30)
    await store.add_signing_key(second)
    await store.add_signing_key(first)
    assert await store.signing_keys() == [first, second]


async def test_a_second_storage_on_the_same_database_sees_committed_data(
    store: Storage, other_node: Storage, tenant: Tenant, client: Client
) -> None:
    assert await store.ingest(write(tenant, client, "b", ["1", "2"]), render) is not None
    assert await other_node.count_points(tenant.id, Environment.TESTING) == 2
    assert await other_node.count_points(tenant.id, Environment.PRODUCTION) == 0
    assert await other_node.get_client(client.client_id) == client


async def test_the_last_point_breaks_ties_by_element_id_then_type_then_context(
    store: Storage, tenant: Tenant, client: Client
) -> None:
    # Points of one KPI from three users, four at the latest timestamp; SQLite's time
    # index holds neither the element id nor the context (migration 0009), so the
    # tie-breaks are read from the rows.
    def pushed(type_: str, context: str, points: list[tuple[str, float, int, str]]) -> BatchWrite:
        return BatchWrite(
            batch_id=f"{type_}-{context}",
            tenant_id=tenant.id,
            environment=client.environment,
            client_pk=client.id,
            batch=ParsedBatch(
                type_,
                "1.0.0",
                context,
                [
                    DataPoint(i, "sales", "number", v, None, ts, None, None, user, None)
                    for i, v, ts, user in points
                ],
            ),
            raw_body=b"",
            received_at=RECEIVED_AT,
        )

    day = 86_400 * 20_000
    for write_ in (
        pushed("pos-a", "sales", [("9", 1.0, day + 50, "u1"), ("10", 2.0, day + 60, "u1")]),
        pushed("pos-a", "bonus", [("10", 3.0, day + 60, "u1"), ("1", 9.0, day + 10, "u2")]),
        pushed("pos-b", "sales", [("10", 4.0, day + 60, "u1"), ("2", 6.0, day + 60, "u3")]),
    ):
        assert await store.ingest(write_, render) is not None
    flt = PointFilter(tenant.id, client.environment, kpis=("sales",))
    # At the latest timestamp: id "2" beats "10" (string order).
    (whole,) = await store.slot_aggregates(flt, slot=86_400, group_by=None, with_last=True)
    assert (whole.slot, whole.points, whole.last) == (day, 6, 6.0)
    by_kpi = await store.slot_aggregates(flt, slot=86_400, group_by="kpi", with_last=True)
    assert [(a.group, a.points, a.last) for a in by_kpi] == [("sales", 6, 6.0)]
    # u1's latest are all id "10": pos-a/sales, pos-a/bonus, pos-b/sales; the greatest
    # type wins.
    per_user = await store.slot_aggregates(flt, slot=86_400, group_by="user_id", with_last=True)
    assert sorted((a.group, a.points, a.last) for a in per_user) == [
        ("u1", 4, 4.0),
        ("u2", 1, 9.0),
        ("u3", 1, 6.0),
    ]
    board = await store.leaderboard(flt, by="user_id", agg="last", limit=10)
    assert [(e.id, e.value, e.count, e.rank) for e in board] == [
        ("u2", 9.0, 1, 1),
        ("u3", 6.0, 1, 2),
        ("u1", 4.0, 4, 3),
    ]
    # Within one type and id, the greatest context: pos-a's "sales" over its "bonus".
    only_a = PointFilter(tenant.id, client.environment, type="pos-a", user_id="u1")
    (a,) = await store.slot_aggregates(only_a, slot=86_400, group_by=None, with_last=True)
    assert (a.points, a.last) == (3, 2.0)
