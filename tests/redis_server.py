"""The Redis the integration and functional tests run against.

A Redis that does not answer makes these tests fail, never skip: CI must not turn
green without having checked the shared limits. Each test works under its own key
prefix, so runs (and parallel runs) never see each other's counters.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """A ``redis-server`` of the test's own on a free port, which it may kill and restart.

    It keeps nothing on disk, so a restart comes back empty, as a Redis holding only
    rate-limit counters may.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: apt-get install redis-server")
        options = ["--bind", "127.0.0.1", "--port", str(self.port)]
        options += ["--save", "", "--appendonly", "no"]  # nothing on disk
        self.process = subprocess.Popen(
            [binary, *options],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.process.kill()
        pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL (Redis dies)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
