"""Two real ``kpihub serve`` processes on one PostgreSQL and one Redis behave as one node.

This is the deployment of docs/deployment.md on one machine: node A and node B share
the store and the rate-limit counters and nothing else.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kpihub.examples import article_example
from tests.databases import PostgresDatabases
from tests.functional.server import Creds, Kpihub, ServerProcess, get_token, new_client
from tests.redis_server import delete_prefix, require_redis, unique_prefix

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"


@dataclass
class Cluster:
    cli: Kpihub
    a: ServerProcess
    b: ServerProcess

    def new_client(self) -> Creds:
        return new_client(self.cli, TENANT)


@pytest.fixture(scope="module")
def shared_cli(
    tmp_path_factory: pytest.TempPathFactory, postgres_databases: PostgresDatabases
) -> Iterator[Kpihub]:
    prefix = unique_prefix()
    with postgres_databases.database() as database_url:
        cli = Kpihub(
            tmp_path_factory.mktemp("nodes"),
            database_url,
            redis_url=require_redis(),
            redis_key_prefix=prefix,
        )
        cli.run("tenant", "create", TENANT)
        cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
        try:
            yield cli
        finally:
            delete_prefix(prefix)


@pytest.fixture(scope="module")
def cluster(shared_cli: Kpihub) -> Iterator[Cluster]:
    a = shared_cli.server(None, name="node-a")
    b = shared_cli.server(None, name="node-b")
    try:
        a.start()
        b.start()
        yield Cluster(shared_cli, a, b)
    finally:
        a.kill()
        b.kill()


def token(node: ServerProcess, creds: Creds) -> str:
    with node.http(TENANT) as http:
        return get_token(http, creds)


def body(context: str) -> dict[str, Any]:
    doc = copy.deepcopy(article_example())
    doc["type"] = INTEGRATION
    doc["context"] = context
    return doc


def small_body(context: str, n: int) -> dict[str, Any]:
    return {
        "type": INTEGRATION,
        "version": "1.0.0",
        "context": context,
        "data": [
            {
                "user_id": "u1",
                "elements": [
                    {
                        "id": n,
                        "kpi": "points",
                        "object_type": "number",
                        "value": n,
                        "timestamp": 1_700_000_000 + n,
                    }
                ],
            }
        ],
    }


def post(http: httpx.Client, access: str, doc: dict[str, Any], **headers: str) -> httpx.Response:
    return http.post(
        "/api/external/v1/kpi",
        json=doc,
        headers={"Authorization": f"Bearer {access}", **headers},
    )


def test_a_token_from_node_a_works_on_node_b(cluster: Cluster) -> None:
    creds = cluster.new_client()
    access = token(cluster.a, creds)
    with cluster.b.http(TENANT) as http:
        response = post(http, access, body("token-a-on-b"))
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 6


def test_the_limit_is_shared_by_both_nodes(cluster: Cluster) -> None:
    creds = cluster.new_client()
    access = token(cluster.a, creds)
    with cluster.a.http(TENANT) as on_a, cluster.b.http(TENANT) as on_b:
        statuses = []
        remaining = []
        for n in range(180):
            response = post(on_a if n % 2 else on_b, access, small_body("limit", n))
            statuses.append(response.status_code)
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        over_a = post(on_a, access, small_body("limit", 999))
        over_b = post(on_b, access, small_body("limit", 998))

    assert statuses == [200] * 180
    assert remaining == list(range(179, -1, -1))  # one counter, whichever node answered
    for over in (over_a, over_b):
        assert over.status_code == 429
        assert over.headers["X-RateLimit-Remaining"] == "0"
        assert int(over.headers["Retry-After"]) >= 1


def test_a_client_revoked_with_the_cli_is_refused_by_both_nodes_at_once(
    cluster: Cluster,
) -> None:
    creds = cluster.new_client()
    access = token(cluster.a, creds)
    with cluster.b.http(TENANT) as http:
        assert post(http, access, body("revoked-cli")).status_code == 200
        cluster.cli.run("client", "revoke", creds.client_id)
        revoked_at = time.monotonic()
        refused = post(http, access, body("revoked-cli"))
        elapsed = time.monotonic() - revoked_at
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert elapsed < 1.0


def test_a_token_revoked_through_node_a_is_refused_by_node_b(cluster: Cluster) -> None:
    creds = cluster.new_client()
    access = token(cluster.a, creds)
    with cluster.a.http(TENANT) as on_a, cluster.b.http(TENANT) as on_b:
        assert post(on_b, access, body("revoked-a")).status_code == 200
        revoke = on_a.post(
            "/oauth/revoke",
            data={
                "token": access,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
        )
        assert revoke.status_code == 200
        refused = post(on_b, access, body("revoked-a"))
    assert refused.status_code == 401


def test_data_written_through_a_reads_back_identically_through_b(cluster: Cluster) -> None:
    creds = cluster.new_client()
    with cluster.a.http(TENANT) as on_a, cluster.b.http(TENANT) as on_b:
        first = post(on_a, token(cluster.a, creds), body("readback"))
        again = post(on_b, token(cluster.b, creds), body("readback"))
    assert first.json()["created"] == 6
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 6)
    rows = cluster.cli.rows(
        "SELECT element_id, kpi, value, units, user_id, location_id, ts, batch_id "
        "FROM data_points WHERE context = ? ORDER BY element_id",
        "readback",
    )
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert {r[7] for r in rows} == {first.json()["batch_id"]}


def test_an_idempotency_key_used_on_a_replays_on_b(cluster: Cluster) -> None:
    creds = cluster.new_client()
    access = token(cluster.a, creds)
    key = f"retry-{time.time_ns()}"
    with cluster.a.http(TENANT) as on_a, cluster.b.http(TENANT) as on_b:
        first = post(on_a, access, body("idempotent"), **{"Idempotency-Key": key})
        replay = post(on_b, access, body("idempotent"), **{"Idempotency-Key": key})
    assert first.status_code == 200
    assert replay.status_code == 200
    assert replay.content == first.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    batches = cluster.cli.rows("SELECT COUNT(*) FROM batches WHERE context = ?", "idempotent")
    assert batches[0][0] == 1


def test_workers_of_one_node_share_the_limit_through_redis(shared_cli: Kpihub) -> None:
    node = shared_cli.server(None, "--workers", "2", name="workers")
    node.start()
    try:
        creds = new_client(shared_cli, TENANT, "--rate-limit", "20")
        access = token(node, creds)
        statuses = []
        # A new connection per request lets the kernel hand requests to both workers.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        for n in range(21):
            with httpx.Client(
                base_url=node.base_url,
                headers={"Host": f"{TENANT}.localhost"},
                limits=no_keepalive,
                timeout=10,
            ) as http:
                statuses.append(post(http, access, small_body("workers", n)).status_code)
        assert statuses == [200] * 20 + [429]
        assert "in-memory rate limits" not in node.log()
    finally:
        node.kill()


def test_several_workers_with_memory_limits_warn_at_start(tmp_path: Path) -> None:
    cli = Kpihub(tmp_path)
    node = cli.server(None, "--workers", "2", name="memory-workers")
    node.start()
    try:
        log = node.log()
    finally:
        node.kill()
    assert "--workers 2 with in-memory rate limits" in log
    assert "KPIHUB_REDIS_URL" in log
