"""Redis dies under a running ``kpihub serve`` and comes back: both failure policies.

A private ``redis-server`` (``tests.redis_server.PrivateRedis``) holds the server's
rate-limit counters while writers push batches (``tests.functional.acked``). It is
SIGKILLed mid-traffic, then started again, empty, on the same port:

* ``KPIHUB_REDIS_FAILURE_POLICY=open``: every request is still served, a client's
  limit now holds from the node's memory (429 past it), the fallback is counted;
* ``closed``: API and token requests get 503 with ``Retry-After``, and ``/readyz``
  stays ready (the store is fine; the policy refuses);
* either way, once Redis answers again the decisions go back to its counters without
  a restart, and every acknowledged batch is stored.

The in-process side of the policies (a Redis that is never there) is in
``tests/functional/test_metrics.py`` and ``tests/integration/test_redis_limiter.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.batches import one_element_batch
from tests.functional.acked import INTEGRATION, TENANT, Load, consistency_problems
from tests.functional.server import (
    Creds,
    Kpihub,
    get_token,
    new_client,
    running_server,
    token_response,
    wait_for,
)
from tests.redis_server import PrivateRedis, keys_under, unique_prefix

pytestmark = pytest.mark.slow

WRITERS = 2
LIMIT = 3  # requests per window of the clients whose limit is checked
WAIT = 30.0
"""Seconds to wait for something that must happen (not a bound: the test may be slow)."""


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.kill()


def node(tmp_path: Path, database_url: str, redis_server: PrivateRedis, policy: str) -> Kpihub:
    cli = Kpihub(
        tmp_path,
        database_url,
        redis_url=redis_server.url,
        redis_key_prefix=unique_prefix(),
        redis_failure_policy=policy,
        rate_limit="100000000",  # the writers' clients are never throttled
    )
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    return cli


def post(http: httpx.Client, token: str, n: int) -> httpx.Response:
    body = one_element_batch(INTEGRATION, "limited", id=f"limited-{n}", value=n)
    auth = {"Authorization": f"Bearer {token}"}
    return http.post("/api/external/v1/kpi", json=body, headers=auth)


def assert_limit_holds(http: httpx.Client, token: str) -> None:
    """``LIMIT`` requests pass, counting down; the next one is throttled."""
    answers = [post(http, token, n) for n in range(LIMIT + 1)]
    assert [a.status_code for a in answers] == [200] * LIMIT + [429], [a.text for a in answers]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:LIMIT]] == [
        str(LIMIT - n) for n in range(1, LIMIT + 1)
    ]
    assert int(answers[-1].headers["Retry-After"]) >= 1


def redis_count(cli: Kpihub, redis_server: PrivateRedis, creds: Creds) -> int | None:
    """How many API requests of ``creds`` Redis counted in this window (None: no key)."""
    prefix = cli.env["KPIHUB_REDIS_KEY_PREFIX"]
    keys = [k for k in keys_under(prefix, redis_server.url) if creds.client_id.encode() in k]
    api = [k for k in keys if b"/api/" in k]
    if not api:
        return None
    client = redis.Redis.from_url(redis_server.url)
    try:
        value = client.get(api[0])
    finally:
        client.close()
    return int(value) if value is not None else None


def fallbacks(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "kpihub_ratelimit_fallbacks_total":
                return s.value
    raise AssertionError("kpihub_ratelimit_fallbacks_total is not exported")


def assert_shared_limits_are_back(
    http: httpx.Client, cli: Kpihub, redis_server: PrivateRedis
) -> None:
    """A fresh client's decisions are counted in Redis, and its headers say so."""
    creds = new_client(cli, TENANT, "--rate-limit", "1000")
    token = get_token(http, creds)
    sent = 0

    def counted_in_redis() -> bool:
        nonlocal sent
        sent += 1
        assert post(http, token, 1000 + sent).status_code == 200
        return redis_count(cli, redis_server, creds) is not None

    wait_for(counted_in_redis, WAIT, "decisions counted in Redis again")
    answer = post(http, token, 2000)
    assert answer.status_code == 200, answer.text
    count = redis_count(cli, redis_server, creds)
    assert count is not None
    assert int(answer.headers["X-RateLimit-Remaining"]) == 1000 - count


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_killed_mid_traffic_then_back(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis, policy: str
) -> None:
    cli = node(tmp_path, database_url, private_redis, policy)
    writer_creds = new_client(cli, TENANT)
    with running_server(cli) as server, server.http(TENANT) as http:
        token = get_token(http, writer_creds)
        load = Load(server, token, WRITERS)
        try:
            started = time.monotonic()
            wait_for(lambda: load.each_answered(200, started), WAIT, "every writer's first 200")
            # Redis counts: a client's limit holds, and its counter is in Redis.
            limited = new_client(cli, TENANT, "--rate-limit", str(LIMIT))
            limited_token = get_token(http, limited)
            assert_limit_holds(http, limited_token)
            assert redis_count(cli, private_redis, limited) == LIMIT + 1

            private_redis.kill()
            down = time.monotonic()
            if policy == "open":
                # Served, and the limit holds again, counted afresh in this node's memory.
                assert_limit_holds(http, limited_token)
                wait_for(lambda: load.each_answered(200, down), WAIT, "writers served")
                assert fallbacks(http) > 0
            else:
                refused = post(http, token, 0)
                assert refused.status_code == 503, refused.text
                assert int(refused.headers["Retry-After"]) >= 1
                assert "rate-limit store cannot be reached" in refused.json()["message"]
                refused_token = token_response(http, limited)
                assert refused_token.status_code == 503, refused_token.text
                assert int(refused_token.headers["Retry-After"]) >= 1
                wait_for(lambda: load.each_answered(503, down), WAIT, "writers refused")
                assert fallbacks(http) == 0
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text  # the store is fine

            private_redis.start()  # empty: the counters of before are gone
            back = time.monotonic()
            wait_for(lambda: load.each_answered(200, back), WAIT, "writers served again")
            assert_shared_limits_are_back(http, cli, private_redis)
        finally:
            load.stop()
        assert server.starts == 1 and server.proc is not None and server.proc.poll() is None

    statuses = load.statuses()
    assert statuses == ({200} if policy == "open" else {200, 503}), statuses
    problems = consistency_problems(cli.database_url, load.writers)
    assert not problems, "\n".join(problems[:20])
    log = server.log(tail=None)  # one access line per request: the warning is far back
    assert "The rate-limit store cannot be reached" in log, log[-4000:]
    assert "answers again" in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
