"""``kpihub push | validate | token | ping`` against a real ``kpihub serve`` process.

The server backend is irrelevant to the client, so these run on SQLite only.
Most tests share a server with a high rate limit (600 per minute) so that pushes
are quick; the throttle test has a server of its own with the default limit of
180 requests per 60 s and 60-second tokens, as the issue asks.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kpihub.client import token_claims
from tests.functional.pushing import (
    INTEGRATION,
    TENANT,
    accepted_batches,
    connection,
    expected_sum,
    new_client,
    push_cli,
    run,
    served_429s,
    setup_tenant,
    stored,
    summary,
    url,
    write_csv,
)
from tests.functional.server import Creds, Kpihub, ServerProcess, kpihub_command, wait_for

pytestmark = pytest.mark.slow

HEADER = ["--type", INTEGRATION, "--version", "1.0.0"]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Kpihub:
    return push_cli(tmp_path_factory.mktemp("push"))


@pytest.fixture(scope="module")
def creds(cli: Kpihub) -> Creds:
    return new_client(cli)


def test_the_default_throttle_means_no_429_and_a_token_refresh(tmp_path: Path) -> None:
    """200,000 CSV elements in 200 requests at 180 per minute: it waits, never meets a 429.

    Tokens live 60 s here and the push lasts longer, so the token is renewed mid-push.
    """
    cli = Kpihub(tmp_path, token_ttl="60", sqlite_synchronous="normal")
    setup_tenant(cli)
    creds = new_client(cli)
    data = write_csv(tmp_path / "big.csv", 200_000)
    server = cli.server().start()
    try:
        started = time.monotonic()
        proc = run(
            cli,
            "push",
            str(data),
            *connection(server, creds),
            *HEADER,
            "--context",
            "big",
            "--batch-size",
            "1000",
            "--json",
            timeout=240,
        )
        elapsed = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        result = summary(proc)
        assert result["ok"] is True
        assert result["statuses"] == {"200": 200}
        assert result["received"] == result["created"] == 200_000
        assert result["tokens_fetched"] >= 2  # the 60 s token was renewed on the way
        assert result["throttled_seconds"] > 30
        assert elapsed > 60  # 200 requests cannot fit one 60 s window of 180
        assert served_429s(server) == 0
        assert stored(cli, "big") == (200_000, 200_000, expected_sum(200_000))
    finally:
        server.kill()


def test_server_stopped_mid_push_and_restarted(
    cli: Kpihub, live: ServerProcess, creds: Creds
) -> None:
    data = write_csv(cli.directory / "outage.csv", 20_000)
    push = subprocess.Popen(
        [
            *kpihub_command(),
            "push",
            str(data),
            *connection(live, creds),
            *HEADER,
            "--context",
            "outage",
            "--batch-size",
            "500",
            "--json",
        ],
        env=cli.env,
        cwd=cli.directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: accepted_batches(cli, "outage") >= 5)
        live.kill()  # a crash: no graceful shutdown, answers in flight are lost
        time.sleep(1.5)
        live.start()
        out, errors = push.communicate(timeout=120)
    finally:
        push.kill()
    assert push.returncode == 0, errors
    result = summary(subprocess.CompletedProcess([], 0, out, errors))
    assert result["retries"] >= 1
    assert "retry 1 in" in errors
    assert result["received"] == 20_000
    # nothing lost, nothing applied twice as new
    assert stored(cli, "outage") == (20_000, 20_000, expected_sum(20_000))


def test_killed_push_resumes_from_the_outbox_exactly_once(
    cli: Kpihub, live: ServerProcess, creds: Creds
) -> None:
    data = write_csv(cli.directory / "kill.csv", 20_000)
    outbox = cli.directory / "outbox.db"
    push = subprocess.Popen(
        [
            *kpihub_command(),
            "push",
            str(data),
            *connection(live, creds),
            *HEADER,
            "--context",
            "kill",
            "--batch-size",
            "500",
            "--outbox",
            str(outbox),
        ],
        env=cli.env,
        cwd=cli.directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: accepted_batches(cli, "kill") >= 8)
        push.send_signal(signal.SIGKILL)
        push.wait(10)
    finally:
        push.kill()
    sent = accepted_batches(cli, "kill")
    assert 8 <= sent < 40, "the push was to be killed mid-way"
    assert stored(cli, "kill")[0] < 20_000

    resumed = run(
        cli, "push", "--resume", "--outbox", str(outbox), *connection(live, creds), "--json"
    )
    assert resumed.returncode == 0, resumed.stderr
    result = summary(resumed)
    assert result["pending_batches"] == 0
    # The outbox held every batch not yet acknowledged (at most one already applied).
    assert 40 - sent <= result["batches"] <= 40 - sent + 1
    assert stored(cli, "kill") == (20_000, 20_000, expected_sum(20_000))

    again = run(cli, "push", "--resume", "--outbox", str(outbox), *connection(live, creds))
    assert again.returncode == 0
    assert "Nothing to send" in again.stdout


def test_a_422_stops_the_push_and_prints_the_servers_field_errors(
    cli: Kpihub, live: ServerProcess, creds: Creds
) -> None:
    data = write_csv(cli.directory / "bad.csv", 3_000, bad_line=1_502 + 5)
    proc = run(
        cli,
        "push",
        str(data),
        *connection(live, creds),
        *HEADER,
        "--context",
        "bad",
        "--batch-size",
        "1000",
        "--no-validate",
        "--json",
    )
    assert proc.returncode == 1
    assert "HTTP 422" in proc.stderr
    # the server's path within the request, and the CSV line it came from
    assert (
        "line 1507: data.0.elements.505.value: The data.0.elements.505.value field must be "
        "a number; got '1,5'. Use '.' as the decimal separator" in proc.stderr
    )
    result = summary(proc)
    assert result["batches"] == 1 and result["rejected_batches"] == 1
    assert result["pending_batches"] == 1  # the third batch was never sent
    assert stored(cli, "bad")[0] == 1_000


def test_local_validation_refuses_before_sending_anything(
    cli: Kpihub, live: ServerProcess, creds: Creds
) -> None:
    data = write_csv(cli.directory / "bad-local.csv", 3_000, bad_line=2_900)
    proc = run(
        cli,
        "push",
        str(data),
        *connection(live, creds),
        *HEADER,
        "--context",
        "bad-local",
        "--batch-size",
        "1000",
    )
    assert proc.returncode == 2
    assert "line 2900: The data.0.elements.898.value field must be a number" in proc.stderr
    assert "nothing was sent" in proc.stderr
    assert stored(cli, "bad-local")[0] == 0


def test_an_unregistered_type_is_the_servers_to_refuse(
    cli: Kpihub, live: ServerProcess, creds: Creds
) -> None:
    data = write_csv(cli.directory / "type.csv", 10)
    proc = run(
        cli,
        "push",
        str(data),
        *connection(live, creds),
        "--type",
        "nope",
        "--version",
        "1",
        "--context",
        "type",
    )
    assert proc.returncode == 1
    assert (
        "type: The type 'nope' is not an integration identifier registered for tenant 'acme'"
        in proc.stderr
    )


def test_push_the_articles_json_and_ndjson(cli: Kpihub, live: ServerProcess, creds: Creds) -> None:
    from kpihub.examples import article_example

    body = {**article_example(), "type": INTEGRATION, "context": "article"}
    article = cli.directory / "article.json"
    article.write_text(__import__("json").dumps(body))
    proc = run(cli, "push", str(article), *connection(live, creds), "--json")
    assert proc.returncode == 0, proc.stderr
    assert summary(proc)["created"] == 6

    nd = cli.directory / "rows.ndjson"
    nd.write_text(
        '{"user_id": 1, "id": "a", "kpi": "k", "object_type": "number", "value": 1, '
        '"timestamp": 1}\n'
        '{"location_id": "x", "elements": [{"id": "b", "kpi": "k", "object_type": "number", '
        '"value": "2", "timestamp": "2019-09-10 13:09:23"}]}\n'
    )
    proc = run(cli, "push", str(nd), *connection(live, creds), *HEADER, "--context", "nd", "--json")
    assert proc.returncode == 0, proc.stderr
    assert stored(cli, "nd")[0] == 2


def test_connection_from_the_environment_or_a_config_file(
    cli: Kpihub, live: ServerProcess, creds: Creds
) -> None:
    data = write_csv(cli.directory / "env.csv", 10)
    env = {
        "KPIHUB_URL": url(live),
        "KPIHUB_CLIENT_ID": creds.client_id,
        "KPIHUB_CLIENT_SECRET": creds.client_secret,
    }
    proc = subprocess.run(
        [*kpihub_command(), "push", str(data), *HEADER, "--context", "env"],
        env={**cli.env, **env},
        cwd=cli.directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Acknowledged 10 elements in 1 requests" in proc.stdout
    config = cli.directory / "kpihub.toml"
    config.write_text(
        f'url = "{url(live)}"\nclient_id = "{creds.client_id}"\n'
        f'client_secret = "{creds.client_secret}"\ntype = "{INTEGRATION}"\nversion = "1"\n'
        'context = "toml"\n'
    )
    proc = run(cli, "push", str(data), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert stored(cli, "toml")[0] == 10
    missing = run(cli, "push", str(data))
    assert missing.returncode == 2
    assert "missing --url (KPIHUB_URL), --client-id" in missing.stderr


def test_validate_reports_every_error_with_where_it_is(cli: Kpihub) -> None:
    nd = cli.directory / "check.ndjson"
    nd.write_text(
        '{"user_id": 1, "id": 1, "kpi": "k", "object_type": "number", "value": "1,5", '
        '"timestamp": 1568120963000}\n'
        '{"id": 2, "kpi": "k", "object_type": "number", "value": 1, "timestamp": 1}\n'
        '{"user_id": 1, "id": 1, "kpi": "k", "object_type": "number", "value": 1, "timestamp": 1}\n'
    )
    proc = run(cli, "validate", str(nd), *HEADER, "--context", "c")
    assert proc.returncode == 2
    lines = proc.stderr
    assert "line 1: The data.0.elements.0.value field must be a number; got '1,5'" in lines
    assert (
        "line 1: The data.0.elements.0.timestamp field must be epoch seconds; got "
        "1568120963000, which looks like milliseconds; divide by 1000" in lines
    )
    assert "line 2: The data.1.user_id field is required" in lines
    assert "line 3: The data.2.elements.0.id field has the duplicate value" in lines
    assert "4 problems" in lines

    good = write_csv(cli.directory / "good.csv", 100)
    ok = run(cli, "validate", str(good), *HEADER, "--context", "c")
    assert ok.returncode == 0, ok.stderr
    assert "OK: 100 elements in 1 requests" in ok.stdout
    missing = run(cli, "validate", str(good))
    assert missing.returncode == 2
    assert "does not carry type, version, context" in missing.stderr


def test_token_prints_a_token_that_works_with_curl(
    live: ServerProcess, cli: Kpihub, creds: Creds
) -> None:
    proc = run(cli, "token", *connection(live, creds))
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token_claims(token)["tenant"] == TENANT
    with live.http(TENANT) as http:
        from kpihub.examples import article_example

        answer = http.post(
            "/api/external/v1/kpi",
            json={**article_example(), "type": INTEGRATION, "context": "curl"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text


def test_ping_says_what_is_wrong(cli: Kpihub, live: ServerProcess, creds: Creds) -> None:
    ok = run(cli, "ping", *connection(live, creds))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: tenant acme, environment testing, scopes kpi:write kpi:read")

    def ping(*args: str) -> str:
        proc = run(cli, "ping", *args, timeout=60)
        assert proc.returncode == 1, proc
        assert "Traceback" not in proc.stderr
        return " ".join(proc.stderr.split())

    base = ["--client-id", creds.client_id, "--client-secret", creds.client_secret]
    assert "unknown tenant: the server at nobody.localhost" in ping(
        "--url", url(live, "nobody"), *base
    )
    wrong = ping("--url", url(live), "--client-id", creds.client_id, "--client-secret", "khs_no")
    assert "wrong credentials" in wrong and "testing client" in wrong
    assert "wrong environment: client" in ping(*connection(live, creds), "--env", "production")
    reader = new_client(cli, "--scope", "kpi:read")
    assert "missing scope" in ping(*connection(live, reader))
    port = live.port
    live.stop()
    try:
        assert f"Could not reach http://acme.localhost:{port}" in ping(*connection(live, creds))
    finally:
        live.start()
    with httpx.Client() as probe:
        assert probe.get(f"{live.base_url}/healthz").status_code == 200
