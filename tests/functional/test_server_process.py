"""A real ``kpihub serve`` process: restarts, crashes and admin commands while it runs.

The tenant, its integration identifier and clients are made with the real CLI, and
the API is called over real HTTP, so this is the path an operator and a vendor take.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kpihub.examples import article_example
from kpihub.storage._sqlite_driver import sqlite3
from tests.functional.server import (
    Creds,
    Kpihub,
    ServerProcess,
    get_token,
    new_client,
    token_response,
)

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Kpihub:
    cli = Kpihub(tmp_path_factory.mktemp("server"), module_database_url)
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    return cli


def article_body(context: str) -> dict[str, Any]:
    """The article's example with our identifier; ``context`` keeps tests' data apart."""
    body = copy.deepcopy(article_example())
    body["type"] = INTEGRATION
    body["context"] = context
    return body


def post_kpi(http: httpx.Client, token: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(
        "/api/external/v1/kpi",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )


def counts(response: httpx.Response) -> tuple[int, int, int, int]:
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["status"] == "ok"
    return ack["received"], ack["created"], ack["updated"], ack["unchanged"]


def jwks_kids(http: httpx.Client) -> list[str]:
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    return [k["kid"] for k in response.json()["keys"]]


def test_host_header_names_the_tenant(live: ServerProcess) -> None:
    with live.http(TENANT) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        metadata = http.get("/.well-known/oauth-authorization-server")
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["issuer"] == "http://acme.localhost"
    with live.http("nobody") as http:
        unknown = http.post("/oauth/token", data={"grant_type": "client_credentials"})
        assert unknown.status_code == 404
        assert "nobody.localhost" in unknown.json()["message"]


def test_data_and_keys_survive_a_restart(cli: Kpihub, live: ServerProcess) -> None:
    creds = new_client(cli, TENANT)
    body = article_body("restart")
    with live.http(TENANT) as http:
        token = get_token(http, creds)
        assert counts(post_kpi(http, token, body)) == (6, 6, 0, 0)
        kids = jwks_kids(http)
    assert kids

    code = live.restart(signal.SIGTERM)
    # A graceful stop: uvicorn exits 0, or re-raises SIGTERM once shut down cleanly.
    assert code in (0, -signal.SIGTERM), live.log()
    assert "Application shutdown complete" in live.log()

    with live.http(TENANT) as http:
        # The signing keys are in the store: same kid, and the old token still verifies.
        assert jwks_kids(http) == kids
        assert counts(post_kpi(http, token, body)) == (6, 0, 0, 6)
        # A fresh token from the restarted server carries the same kid too.
        fresh = get_token(http, creds)
        assert counts(post_kpi(http, fresh, body)) == (6, 0, 0, 6)
    assert "Traceback" not in live.log()


def test_revoking_from_the_cli_stops_a_running_servers_tokens(
    cli: Kpihub, live: ServerProcess
) -> None:
    creds = new_client(cli, TENANT)
    body = article_body("revocation")
    with live.http(TENANT) as http:
        token = get_token(http, creds)
        assert counts(post_kpi(http, token, body)) == (6, 6, 0, 0)

        cli.run("client", "revoke", creds.client_id)  # another process, same store

        refused = post_kpi(http, token, body)
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
        assert "revoked" in refused.json()["message"]

        # Nor can the revoked client get a new token.
        again = token_response(http, creds)
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_client"


def test_a_rotated_secret_works_at_once_on_the_running_server(
    cli: Kpihub, live: ServerProcess
) -> None:
    creds = new_client(cli, TENANT)
    rotated = cli.json("client", "rotate-secret", creds.client_id)
    new = Creds(creds.client_id, rotated["client_secret"])
    with live.http(TENANT) as http:
        get_token(http, creds)  # the old secret, still valid during rotation
        get_token(http, new)
        cli.run("client", "retire-old-secret", creds.client_id)
        refused = token_response(http, creds)
        assert refused.status_code == 401
        get_token(http, new)


def test_an_acked_batch_survives_sigkill(cli: Kpihub, live: ServerProcess) -> None:
    creds = new_client(cli, TENANT)
    body = article_body("crash")
    with live.http(TENANT) as http:
        token = get_token(http, creds)
        acked = post_kpi(http, token, body)
    # Kill the moment the ACK is in: no graceful shutdown, no chance to flush anything.
    live.kill()
    assert counts(acked) == (6, 6, 0, 0)

    live.start()
    with live.http(TENANT) as http:
        assert counts(post_kpi(http, token, body)) == (6, 0, 0, 6)


def test_database_is_where_the_settings_say(cli: Kpihub, live: ServerProcess) -> None:
    if cli.database is not None:
        assert cli.database.is_file()
    else:
        # PostgreSQL: the configured database holds the data.
        assert cli.rows("SELECT name FROM tenants") == [(TENANT,)]
        assert cli.rows("SELECT identifier FROM integrations") == [(INTEGRATION,)]
    assert Path(cli.key_file).is_file()
    assert not (cli.directory / "kpihub.db").exists()


def _writer_pid(server_pid: int) -> int:
    """The SQLite writer process among the server's children."""
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"kpihub.storage._sqlite_writer" in cmdline:
                return int(child)
    raise AssertionError(f"no SQLite writer process under {server_pid}")


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A child of the dead server is reaped by init; until then it is a zombie.
        with contextlib.suppress(FileNotFoundError):
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_sqlite_writer_process_ends_with_its_server(
    tmp_path: Path, sig: signal.Signals
) -> None:
    cli = Kpihub(tmp_path)  # SQLite: PostgreSQL has no writer process
    assert cli.database is not None
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    creds = new_client(cli, TENANT)
    server = cli.server(name="writer").start()
    try:
        with server.http(TENANT) as http:
            token = get_token(http, creds)
            assert counts(post_kpi(http, token, article_body("writer"))) == (6, 6, 0, 0)
        assert server.proc is not None
        writer = _writer_pid(server.proc.pid)

        os.kill(server.proc.pid, sig)  # the server alone, not its process group
        server.proc.wait(10)
        assert _gone(writer), f"the writer {writer} outlived its server ({sig.name})"
        if sig == signal.SIGTERM:  # a graceful stop merged what was staged
            with sqlite3.connect(cli.database) as conn:
                assert conn.execute("SELECT COUNT(*) FROM data_points_incoming").fetchone() == (0,)

        server.start()
        with server.http(TENANT) as http:
            assert counts(post_kpi(http, token, article_body("writer"))) == (6, 0, 0, 6)
    finally:
        server.kill()
