"""The real ``kpihub`` command line, run as a subprocess against a private database.

Every test that reaches the database runs on SQLite and on PostgreSQL (the
``database_url`` fixture); the few that never open one (help, usage and settings
errors) run once, and the SQLite file-path checks are SQLite-only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kpihub.oauth.secrets import verify_secret
from tests.functional.server import Kpihub, kpihub_command

TENANT = "acme"


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Kpihub:
    return Kpihub(tmp_path, database_url)


@pytest.fixture
def no_db_cli(tmp_path: Path) -> Kpihub:
    """For commands that fail or finish before any database is opened: one backend is enough."""
    return Kpihub(tmp_path)


@pytest.fixture
def acme(cli: Kpihub) -> Kpihub:
    cli.run("tenant", "create", TENANT)
    return cli


def one_line(text: str) -> str:
    """Rich may wrap at the terminal width; compare messages with whitespace collapsed."""
    return " ".join(text.split())


def create_client(cli: Kpihub, *options: str, env: str = "testing") -> dict[str, Any]:
    created: dict[str, Any] = cli.json(
        "client", "create", "--tenant", TENANT, "--env", env, "--name", "pos", *options
    )
    return created


def client_row(cli: Kpihub, client_id: str) -> dict[str, object]:
    rows: list[dict[str, object]] = cli.json("client", "list", "--tenant", TENANT)
    (row,) = [r for r in rows if r["client_id"] == client_id]
    return row


def secret_accepted(cli: Kpihub, client_id: str, secret: str) -> bool:
    """Check a printed secret against what the CLI stored (the key file and the DB)."""
    key = cli.key_file.read_text(encoding="ascii").strip().encode()
    (hashes,) = cli.rows(
        "SELECT secret_hash, old_secret_hash FROM clients WHERE client_id = ?", client_id
    )
    return verify_secret(secret, key, hashes)


# -- the command itself -----------------------------------------------------------------


def test_help_lists_the_command_groups(no_db_cli: Kpihub) -> None:
    text = no_db_cli.run("--help").stdout
    for group in ("db", "tenant", "integration", "client", "serve", "demo"):
        assert re.search(rf"^\W*{group}\s", text, re.MULTILINE), text
    # ``python -m kpihub`` is the same command.
    module = subprocess.run(
        [sys.executable, "-m", "kpihub", "client", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for command in ("create", "list", "rotate-secret", "retire-old-secret", "revoke"):
        assert command in module.stdout


def test_console_script_is_used(no_db_cli: Kpihub) -> None:
    assert Path(kpihub_command()[0]).name == "kpihub", "the kpihub script is not installed"


def test_invalid_setting_names_the_environment_variable(no_db_cli: Kpihub) -> None:
    result = no_db_cli.run("tenant", "list", ok=False, env={"KPIHUB_TOKEN_TTL": "5"})
    assert "KPIHUB_TOKEN_TTL='5'" in result.stderr
    assert "greater than or equal to 60" in result.stderr


# -- db ---------------------------------------------------------------------------------


def test_db_upgrade_on_a_fresh_database_then_again(tmp_path: Path) -> None:
    # SQLite-only: a folder that does not exist yet is created, as the server does.
    cli = Kpihub(tmp_path, f"sqlite:///{tmp_path / 'data' / 'new' / 'k.db'}")
    first = cli.run("db", "upgrade")
    match = re.search(r"Schema at revision (\w+) \(was empty\)", first.stdout)
    assert match, first
    head = match.group(1)
    assert (tmp_path / "data" / "new" / "k.db").is_file()

    again = cli.run("db", "upgrade")
    assert f"Schema at revision {head} (was {head})" in again.stdout


def test_db_upgrade_on_an_empty_database_then_again(
    tmp_path: Path, empty_database_url: str
) -> None:
    cli = Kpihub(tmp_path, empty_database_url)
    first = cli.run("db", "upgrade")
    match = re.search(r"Schema at revision (\w+) \(was empty\)", first.stdout)
    assert match, first
    head = match.group(1)
    assert cli.rows("SELECT version_num FROM alembic_version") == [(head,)]
    assert cli.rows("SELECT COUNT(*) FROM tenants") == [(0,)]

    again = cli.run("db", "upgrade")
    assert f"Schema at revision {head} (was {head})" in again.stdout


def test_db_upgrade_reports_an_unusable_path(no_db_cli: Kpihub) -> None:
    # SQLite-only: a file path whose folder is a file.
    cli = no_db_cli
    (cli.directory / "afile").write_text("not a folder")
    url = f"sqlite:///{cli.directory / 'afile' / 'k.db'}"
    result = cli.run("db", "upgrade", ok=False, env={"KPIHUB_DATABASE_URL": url})
    message = one_line(result.stderr)
    assert "KPIHUB_DATABASE_URL" in message
    assert url in message


def test_db_upgrade_rejects_an_unknown_scheme(no_db_cli: Kpihub) -> None:
    result = no_db_cli.run(
        "db", "upgrade", ok=False, env={"KPIHUB_DATABASE_URL": "mysql://db/kpihub"}
    )
    message = one_line(result.stderr)
    assert "'mysql://db/kpihub'" in message
    assert "sqlite:///" in message


# -- tenants ----------------------------------------------------------------------------


def test_tenant_create_and_list(cli: Kpihub) -> None:
    made = cli.run("tenant", "create", "acme", "--timezone", "Europe/Copenhagen")
    assert "acme" in made.stdout
    assert "Europe/Copenhagen" in made.stdout
    cli.run("tenant", "create", "beta-shop")

    listed = cli.json("tenant", "list")
    assert [(t["name"], t["timezone"]) for t in listed] == [
        ("acme", "Europe/Copenhagen"),
        ("beta-shop", "UTC"),
    ]
    assert all(isinstance(t["created_at"], int) for t in listed)

    rows = cli.run("tenant", "list").stdout.splitlines()
    assert any("acme" in r and "Europe/Copenhagen" in r for r in rows), rows
    assert any("beta-shop" in r and "UTC" in r for r in rows), rows


@pytest.mark.parametrize("name", ["Acme_Corp", "a" * 64])
def test_tenant_create_rejects_a_bad_name(cli: Kpihub, name: str) -> None:
    message = one_line(cli.run("tenant", "create", name, ok=False).stderr)
    assert repr(name) in message
    assert "lowercase letters, digits or inner hyphens" in message


def test_tenant_create_rejects_a_bad_timezone(cli: Kpihub) -> None:
    result = cli.run("tenant", "create", "acme", "--timezone", "Mars/Olympus", ok=False)
    message = one_line(result.stderr)
    assert "--timezone: 'Mars/Olympus' is not valid" in message
    assert "IANA zone such as 'UTC' or 'Europe/Copenhagen'" in message


def test_tenant_create_twice_is_an_error(acme: Kpihub) -> None:
    result = acme.run("tenant", "create", TENANT, "--timezone", "Europe/Paris", ok=False)
    assert "Tenant 'acme' already exists." in one_line(result.stderr)
    # The first one is untouched.
    assert [t["timezone"] for t in acme.json("tenant", "list")] == ["UTC"]


# -- integration identifiers ------------------------------------------------------------


def test_integration_create_and_list(acme: Kpihub) -> None:
    acme.run("integration", "create", "--tenant", TENANT, "acme-pos")
    made = acme.json("integration", "create", "-t", TENANT, "acme-hr")
    assert made["identifier"] == "acme-hr"

    assert [i["identifier"] for i in acme.json("integration", "list", "--tenant", TENANT)] == [
        "acme-hr",
        "acme-pos",
    ]
    table = acme.run("integration", "list", "--tenant", TENANT).stdout
    assert "acme-pos" in table
    assert "acme-hr" in table

    again = acme.run("integration", "create", "--tenant", TENANT, "acme-pos", ok=False)
    assert "'acme-pos' already exists" in one_line(again.stderr)


def test_integration_for_an_unknown_tenant(cli: Kpihub) -> None:
    result = cli.run("integration", "create", "--tenant", "nobody", "pos", ok=False)
    assert "No tenant named 'nobody'. List them with 'kpihub tenant list'." in one_line(
        result.stderr
    )


# -- clients ----------------------------------------------------------------------------


def test_client_create_prints_the_credentials_once(acme: Kpihub) -> None:
    created = create_client(acme, "--scope", "kpi:write", "--rate-limit", "5", "--token-ttl", "120")
    assert set(created) >= {"client_id", "client_secret"}
    assert created["client_id"].startswith("kh_test_")
    assert len(created["client_secret"]) >= 22  # >= 128 bits in base64url
    assert created["environment"] == "testing"
    assert created["scopes"] == ["kpi:write"]
    assert secret_accepted(acme, created["client_id"], created["client_secret"])

    production = create_client(acme, env="production")
    assert production["client_id"].startswith("kh_live_")
    assert production["environment"] == "production"
    assert production["scopes"] == ["kpi:write", "kpi:read"]

    listed = acme.run("client", "list", "--tenant", TENANT, "--json")
    rows = listed.json()
    assert {r["client_id"] for r in rows} == {created["client_id"], production["client_id"]}
    # Neither the secrets nor their hashes are ever listed.
    assert "hash" not in listed.stdout
    assert created["client_secret"] not in listed.stdout
    assert production["client_secret"] not in listed.stdout
    (row,) = [r for r in rows if r["client_id"] == created["client_id"]]
    assert (row["environment"], row["scopes"], row["rate_limit"], row["token_ttl"]) == (
        "testing",
        ["kpi:write"],
        5,
        120,
    )
    assert row["revoked_at"] is None

    only_production = acme.json("client", "list", "-t", TENANT, "--env", "production")
    assert [r["client_id"] for r in only_production] == [production["client_id"]]

    # The table shows each client_id whole, on one line, so it can be copied.
    table = acme.run("client", "list", "--tenant", TENANT).stdout
    line = next(row for row in table.splitlines() if created["client_id"] in row)
    assert "testing" in line
    assert "active" in line
    assert created["client_secret"] not in table


def test_client_create_plain_output(acme: Kpihub) -> None:
    text = acme.run(
        "client", "create", "--tenant", TENANT, "--env", "production", "--name", "erp"
    ).stdout
    client_id = re.search(r"client_id:\s+(\S+)", text)
    secret = re.search(r"client_secret:\s+(\S+)", text)
    assert client_id and secret, text
    assert "shown once" in text
    assert secret_accepted(acme, client_id.group(1), secret.group(1))


def test_client_create_rejects_an_unknown_environment(no_db_cli: Kpihub) -> None:
    result = no_db_cli.run(
        "client", "create", "--tenant", TENANT, "--env", "staging", "--name", "pos", ok=False
    )
    assert result.returncode == 2  # a usage error
    message = one_line(result.stderr)
    assert "--env" in message
    assert "'staging'" in message
    assert "'testing'" in message
    assert "'production'" in message


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--token-ttl", "5"], "--token-ttl: 5 is not valid. Give seconds between 60 and 86400."),
        (["--scope", "kpi:delete"], "--scope: 'kpi:delete' is not valid. Known scopes:"),
        (["--rate-limit", "0"], "--rate-limit: 0 is not valid. Give a positive whole number."),
    ],
)
def test_client_create_rejects_bad_options(acme: Kpihub, options: list[str], expected: str) -> None:
    result = acme.run(
        "client", "create", "-t", TENANT, "--env", "testing", "--name", "pos", *options, ok=False
    )
    assert expected in one_line(result.stderr)


def test_client_for_an_unknown_tenant(cli: Kpihub) -> None:
    result = cli.run(
        "client", "create", "-t", "nobody", "--env", "testing", "--name", "pos", ok=False
    )
    assert "No tenant named 'nobody'" in one_line(result.stderr)


def test_rotate_then_retire_the_old_secret(acme: Kpihub) -> None:
    created = create_client(acme)
    client_id, first = created["client_id"], created["client_secret"]

    rotated = acme.json("client", "rotate-secret", client_id)
    second = rotated["client_secret"]
    assert rotated["client_id"] == client_id
    assert second != first
    # During the rotation both secrets are accepted.
    assert secret_accepted(acme, client_id, first)
    assert secret_accepted(acme, client_id, second)
    table = acme.run("client", "list", "-t", TENANT).stdout
    line = next(row for row in table.splitlines() if client_id in row)
    assert "valid" in line  # the old-secret column

    refused = acme.run("client", "rotate-secret", client_id, ok=False)
    assert "retire it first with 'kpihub client retire-old-secret'" in one_line(refused.stderr)

    retired = acme.run("client", "retire-old-secret", client_id)
    assert "no longer accepted" in retired.stdout
    assert not secret_accepted(acme, client_id, first)
    assert secret_accepted(acme, client_id, second)

    # With the old one retired, the next rotation is allowed again.
    third = acme.json("client", "rotate-secret", client_id)["client_secret"]
    assert secret_accepted(acme, client_id, third)


def test_revoke(acme: Kpihub) -> None:
    created = create_client(acme)
    client_id = created["client_id"]
    result = acme.run("client", "revoke", client_id)
    assert f"Revoked {client_id}" in result.stdout
    table = acme.run("client", "list", "-t", TENANT).stdout
    assert "revoked" in next(r for r in table.splitlines() if client_id in r)
    # Revoking twice is harmless.
    assert isinstance(acme.json("client", "revoke", client_id)["revoked_at"], int)


def test_set_rate_limit(acme: Kpihub) -> None:
    client_id = create_client(acme)["client_id"]
    assert acme.json("client", "set-rate-limit", client_id, "300")["rate_limit"] == 300
    back = acme.run("client", "set-rate-limit", client_id, "default")
    assert "default requests per minute" in back.stdout
    assert client_row(acme, client_id)["rate_limit"] is None


def test_set_rate_limit_rejects_a_bad_value(acme: Kpihub) -> None:
    client_id = create_client(acme)["client_id"]
    for value in ("0", "fast", "²"):
        result = acme.run("client", "set-rate-limit", client_id, "--", value, ok=False)
        assert (
            f"PER_MINUTE: {value!r} is not valid. Give a positive whole number or 'default'."
            in one_line(result.stderr)
        )


def test_an_unknown_client_id_is_a_clear_error(cli: Kpihub) -> None:
    unknown = "kh_test_doesnotexist"
    for args in (
        ["rotate-secret", unknown],
        ["retire-old-secret", unknown],
        ["revoke", unknown],
        ["set-rate-limit", unknown, "300"],
    ):
        result = cli.run("client", *args, ok=False)
        assert f"No client with client_id '{unknown}'. See 'kpihub client list'." in one_line(
            result.stderr
        ), result


def test_client_list_for_an_unknown_tenant(cli: Kpihub) -> None:
    result = cli.run("client", "list", "--tenant", "nobody", ok=False)
    assert "No tenant named 'nobody'" in one_line(result.stderr)


# -- demo -------------------------------------------------------------------------------


def test_demo_is_repeatable(cli: Kpihub) -> None:
    first = cli.json("demo")
    assert first["type"] == "demo-pos"
    assert first["base_url"] == "http://demo.localhost:8000"
    assert secret_accepted(cli, first["client_id"], first["client_secret"])

    second = cli.json("demo")
    assert second["client_id"] != first["client_id"]
    assert secret_accepted(cli, second["client_id"], second["client_secret"])

    clients = {c["client_id"]: c for c in cli.json("client", "list", "--tenant", "demo")}
    assert set(clients) == {first["client_id"], second["client_id"]}
    assert clients[first["client_id"]]["revoked_at"] is not None  # the old demo client
    assert clients[second["client_id"]]["revoked_at"] is None
    assert [i["identifier"] for i in cli.json("integration", "list", "-t", "demo")] == ["demo-pos"]

    text = cli.run("demo").stdout  # the human form prints a curl pair to try
    assert "curl" in text
    assert "/oauth/token" in text
    assert "/api/external/v1/kpi" in text
