"""The Redis the integration and functional tests run against.

A Redis that does not answer makes these tests fail, never skip: CI must not turn
green without having checked the shared limits. Each test works under its own key
prefix, so runs (and parallel runs) never see each other's counters.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

REDIS_URL = os.environ.get("KPIHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"
"""Nothing listens on port 1: connections are refused at once."""


def require_redis() -> str:
    """The test Redis URL; fails the test with how to start Redis when it does not answer."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis at {REDIS_URL} does not answer ({exc}). Start one with "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' "
            "--appendonly no`, or point KPIHUB_TEST_REDIS_URL at one."
        )
    finally:
        client.close()
    return REDIS_URL


def unique_prefix() -> str:
    return f"kpihub-test-{uuid.uuid4().hex}"


def keys_under(prefix: str, url: str = REDIS_URL) -> list[bytes]:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return list(client.scan_iter(match=f"{prefix}:*"))
    finally:
        client.close()


def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
