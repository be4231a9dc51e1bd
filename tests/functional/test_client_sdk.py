"""The SDK (``kpihub.client``) in-process against a real ``kpihub serve`` process."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
from typing import Any

import pytest

from kpihub.client import (
    AsyncKpiClient,
    AuthenticationError,
    KpiClient,
    NotFoundError,
    ValidationError,
)
from kpihub.examples import article_example
from tests.functional.pushing import INTEGRATION, new_client, push_cli, stored, url
from tests.functional.server import Creds, Kpihub, ServerProcess

pytestmark = pytest.mark.slow

SERVER_ONLY = (
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "psycopg",
    "redis",
    "limits",
    "prometheus_client",
)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Kpihub:
    return push_cli(tmp_path_factory.mktemp("sdk"))


@pytest.fixture(scope="module")
def creds(cli: Kpihub) -> Creds:
    return new_client(cli)


def body(context: str) -> dict[str, Any]:
    doc = copy.deepcopy(article_example())
    return {"type": INTEGRATION, "version": doc["version"], "context": context, "data": doc["data"]}


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    code = (
        "import sys, kpihub.client\n"
        f"print(','.join(m for m in {SERVER_ONLY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""


def test_send_the_articles_body(cli: Kpihub, server: ServerProcess, creds: Creds) -> None:
    with KpiClient(url(server), creds.client_id, creds.client_secret) as kpi:
        ack = kpi.send(**body("sdk"))
        assert (ack.received, ack.created, ack.updated, ack.unchanged) == (6, 6, 0, 0)
        assert len(ack.batch_id) > 10
        again = kpi.send(**body("sdk"))
        assert (again.created, again.unchanged) == (0, 6)
        assert kpi.stats.tokens_fetched == 1
    assert stored(cli, "sdk")[0] == 6


def test_a_revoked_token_mid_push_is_replaced_transparently(
    cli: Kpihub, server: ServerProcess, creds: Creds
) -> None:
    """The token dies before its time (revoked, as expiry would): one 401, a new token, done."""
    with KpiClient(url(server), creds.client_id, creds.client_secret, max_elements=2) as kpi:
        kpi.send(**body("revoked"))
        token = kpi.token()
        with server.http("acme") as http:
            revoked = http.post(
                "/oauth/revoke",
                data={"token": token},
                auth=(creds.client_id, creds.client_secret),
            )
            assert revoked.status_code == 200, revoked.text
        ack = kpi.send(**body("revoked"))
        assert ack.requests == 3 and ack.unchanged == 6
        assert kpi.stats.tokens_fetched == 2
        assert kpi.stats.statuses[401] == 1
        assert kpi.token() != token


def test_validation_errors_carry_the_servers_fields(server: ServerProcess, creds: Creds) -> None:
    bad = body("invalid")
    bad["data"][0]["elements"][1]["value"] = "1,5"
    with KpiClient(url(server), creds.client_id, creds.client_secret) as kpi:
        with pytest.raises(ValidationError) as caught:
            kpi.send(**bad)
        assert kpi.stats.requests == 1  # never retried
    assert caught.value.status == 422
    assert list(caught.value.errors) == ["data.0.elements.1.value"]
    assert "Use '.' as the decimal separator" in caught.value.errors["data.0.elements.1.value"][0]


def test_wrong_secret_and_unknown_tenant(server: ServerProcess, creds: Creds) -> None:
    with (
        KpiClient(url(server), creds.client_id, "khs_wrong") as kpi,
        pytest.raises(AuthenticationError) as wrong,
    ):
        kpi.send(**body("x"))
    assert wrong.value.error == "invalid_client"
    with (
        KpiClient(url(server, "nobody"), creds.client_id, creds.client_secret) as kpi,
        pytest.raises(NotFoundError),
    ):
        kpi.token()


def test_async_client(cli: Kpihub, server: ServerProcess, creds: Creds) -> None:
    async def main() -> int:
        async with AsyncKpiClient(
            url(server), creds.client_id, creds.client_secret, max_elements=4
        ) as kpi:
            ack = await kpi.send(**body("async"))
            return ack.requests

    assert asyncio.run(main()) == 2
    assert stored(cli, "async")[0] == 6


def test_uncompressed_requests_work_too(cli: Kpihub, server: ServerProcess, creds: Creds) -> None:
    with KpiClient(url(server), creds.client_id, creds.client_secret, gzip=False) as kpi:
        assert kpi.send(**body("plain")).created == 6
