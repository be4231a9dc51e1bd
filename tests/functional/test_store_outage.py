"""A PostgreSQL outage under a running ``kpihub serve``: 503s, not ready, then back.

The store is a private PostgreSQL cluster (``tests.private_postgres``), stopped,
crashed or frozen while writers push batches (``tests.functional.acked``). While it
is down every answer is a 503 with ``Retry-After`` — ingestion, tokens, bearer
authentication — and ``/readyz`` says not ready; nothing is acknowledged that is not
stored; once PostgreSQL is back, ingestion resumes in the same server process.

Every client here waits at most ``BOUND`` seconds for an answer: the server's
``KPIHUB_DATABASE_TIMEOUT`` and a margin. An answer that takes longer fails the test
as a hang.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.batches import one_element_batch
from tests.functional.acked import INTEGRATION, TENANT, Load, consistency_problems
from tests.functional.server import (
    CLI_TIMEOUT,
    Kpihub,
    ServerProcess,
    get_token,
    new_client,
    running_server,
    token_response,
    wait_for,
)
from tests.private_postgres import PrivatePostgres, private_postgres

pytestmark = pytest.mark.slow

DATABASE_TIMEOUT = 2.0
BOUND = DATABASE_TIMEOUT + 1.5
WAIT = 30.0
"""Seconds to wait for something that must happen (not a bound: the test may be slow)."""
WRITERS = 6


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


@pytest.fixture
def postgres(cluster: PrivatePostgres) -> PrivatePostgres:
    cluster.ensure_running()
    return cluster


@pytest.fixture
def cli(tmp_path: Path, postgres: PrivatePostgres) -> Kpihub:
    url = postgres.create_database(f"kpihub_{uuid.uuid4().hex[:12]}")
    cli = Kpihub(tmp_path, url, database_timeout=str(DATABASE_TIMEOUT), rate_limit="100000000")
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    return cli


@pytest.fixture
def server(cli: Kpihub) -> Iterator[ServerProcess]:
    with running_server(cli) as process:
        yield process


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "PostgreSQL" in response.json()["message"], response.text


def outage(
    server: ServerProcess,
    cli: Kpihub,
    take_down: Callable[[], None],
    bring_back: Callable[[], None],
) -> None:
    """Ingestion under load while the store is taken down and brought back."""
    creds = new_client(cli, TENANT)
    with server.http(TENANT, timeout=BOUND) as http:
        token = get_token(http, creds)
        auth = {"Authorization": f"Bearer {token}"}
        load = Load(server, token, WRITERS, timeout=BOUND)
        try:
            started = time.monotonic()
            wait_for(lambda: load.each_answered(200, started), WAIT, "every writer's first 200")

            take_down()
            down = time.monotonic()
            probe = one_element_batch(INTEGRATION, "probe", id="probe", value=1)
            assert_unavailable(http.post("/api/external/v1/kpi", json=probe, headers=auth))
            assert_unavailable(token_response(http, creds))
            assert_unavailable(http.get("/api/external/v1/kpi", headers=auth))
            ready = http.get("/readyz")
            assert_unavailable_ready(ready)
            assert http.get("/healthz").status_code == 200  # the process itself is fine
            wait_for(lambda: load.each_answered(503, down), WAIT, "every writer's 503")

            back = time.monotonic()
            bring_back()
            # The same process: no restart, no reconnect by hand.
            wait_for(
                lambda: (
                    http.post("/api/external/v1/kpi", json=probe, headers=auth).status_code == 200
                ),
                30,
                "ingestion to resume",
            )
            resumed = time.monotonic()
            assert http.get("/readyz").status_code == 200
            assert get_token(http, creds)
            wait_for(lambda: load.each_answered(200, resumed), WAIT, "every writer's next 200")
        finally:
            load.stop()
    assert server.starts == 1 and server.proc is not None and server.proc.poll() is None

    during = load.answers_between(down, back)
    assert during, "no writer request fell inside the outage"
    assert set(during) == {503}, f"answers while PostgreSQL was down: {sorted(set(during))}"
    problems = consistency_problems(cli.database_url, load.writers)
    assert not problems, "\n".join(problems[:20])
    log = server.log()
    assert "Traceback" not in log and "unhandled error" not in log, log


def assert_unavailable_ready(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["status"] == "unavailable"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_stopped_postgres_gives_503s_until_it_is_back(
    server: ServerProcess, cli: Kpihub, postgres: PrivatePostgres, mode: str
) -> None:
    """``fast`` ends every session cleanly; ``immediate`` is PostgreSQL crashing."""
    outage(server, cli, lambda: postgres.stop(mode), postgres.start)


def test_an_unreachable_postgres_gives_503s_within_the_timeout(
    server: ServerProcess, cli: Kpihub, postgres: PrivatePostgres
) -> None:
    """A frozen server answers nothing and refuses nothing: only timeouts end the wait."""
    outage(server, cli, postgres.freeze, postgres.thaw)


def test_serve_waits_at_start_for_a_postgres_still_starting(
    cli: Kpihub, postgres: PrivatePostgres
) -> None:
    """As at boot: the server starts before PostgreSQL does, waits, then serves."""
    postgres.stop()
    server = cli.server()
    comes_up = threading.Timer(3.0, postgres.start)
    comes_up.start()
    try:
        server.start()  # fails if serve exits instead of waiting
        creds = new_client(cli, TENANT)
        with server.http(TENANT, timeout=BOUND) as http:
            auth = {"Authorization": f"Bearer {get_token(http, creds)}"}
            batch = one_element_batch(INTEGRATION, "late-start", id="late-start", value=1)
            assert http.post("/api/external/v1/kpi", json=batch, headers=auth).status_code == 200
            assert http.get("/readyz").status_code == 200
    finally:
        comes_up.join()
        server.kill()
    log = server.log(tail=None)
    assert "Connection refused" in log and "Waiting for it: retry 1 in" in log, log
    assert "KPIHUB_STORE_START_TIMEOUT" in log and "Traceback" not in log, log


def test_serve_gives_up_on_a_postgres_down_for_longer_than_the_start_timeout(
    cli: Kpihub, postgres: PrivatePostgres
) -> None:
    postgres.stop()
    started = time.monotonic()
    result = cli.run("serve", "--port", "0", ok=False, env={"KPIHUB_STORE_START_TIMEOUT": "1.5"})
    took = time.monotonic() - started
    assert result.returncode == 1
    assert "Waiting for it: retry 1 in" in result.stderr, result
    assert "did not answer within 1.5 s (KPIHUB_STORE_START_TIMEOUT)" in result.stderr, result
    assert 1.5 <= took < CLI_TIMEOUT, took


def test_serve_with_no_start_timeout_exits_at_once(cli: Kpihub, postgres: PrivatePostgres) -> None:
    postgres.stop()
    result = cli.run("serve", "--port", "0", ok=False, env={"KPIHUB_STORE_START_TIMEOUT": "0"})
    assert "cannot be opened or migrated" in result.stderr, result
    assert "Waiting for it" not in result.stderr and "did not answer" not in result.stderr, result
