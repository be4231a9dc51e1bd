"""``kpihub user create|list``: dashboard users made with the real command."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpihub.web.passwords import verify_password
from tests.functional.server import Kpihub, Result

PASSWORD = "correct horse battery staple"


def create_user(
    cli: Kpihub,
    email: str,
    *,
    tenant: str = "acme",
    stdin: str = PASSWORD + "\n",
    password_stdin: bool = True,
    ok: bool | None = True,
) -> Result:
    """``kpihub user create -t TENANT --email EMAIL [--password-stdin]`` fed ``stdin``."""
    flags = ("--password-stdin",) if password_stdin else ()
    return cli.run("user", "create", "-t", tenant, "--email", email, *flags, stdin=stdin, ok=ok)


@pytest.fixture
def acme(tmp_path: Path, database_url: str) -> Kpihub:
    cli = Kpihub(tmp_path, database_url)
    cli.run("tenant", "create", "acme")
    return cli


def test_user_create_stores_an_argon2id_hash(acme: Kpihub) -> None:
    made = acme.run(
        "user",
        "create",
        "--tenant",
        "acme",
        "--email",
        "Ada@Example.com",
        "--role",
        "admin",
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    ).json()
    assert made["email"] == "ada@example.com"
    assert made["role"] == "admin"
    assert "password_hash" not in made
    ((stored, role),) = acme.rows("SELECT password_hash, role FROM dashboard_users")
    assert stored.startswith("$argon2id$")
    assert role == "admin"
    assert verify_password(stored, PASSWORD)
    assert PASSWORD not in stored


def test_user_role_defaults_to_viewer_and_list_shows_users(acme: Kpihub) -> None:
    create_user(acme, "val@example.com")
    (user,) = acme.json("user", "list", "--tenant", "acme")
    assert (user["email"], user["role"], user["last_login_at"]) == (
        "val@example.com",
        "viewer",
        None,
    )
    table = acme.run("user", "list", "--tenant", "acme").stdout
    assert "val@example.com" in table and "viewer" in table


def test_user_create_refuses_bad_input(acme: Kpihub) -> None:
    short = create_user(acme, "a@example.com", stdin="short\n", ok=False)
    assert "at least 12 characters" in short.stderr
    bad_email = create_user(acme, "not-an-email", ok=False)
    assert "email address" in bad_email.stderr
    create_user(acme, "a@example.com")
    twice = create_user(acme, "A@example.com", ok=False)
    assert "already exists" in twice.stderr
    nobody = create_user(acme, "b@example.com", tenant="nobody", ok=False)
    assert "No tenant named 'nobody'" in nobody.stderr


def test_user_create_prompts_twice_for_the_password(acme: Kpihub) -> None:
    mismatch = create_user(
        acme,
        "a@example.com",
        password_stdin=False,
        stdin=f"{PASSWORD}\nsomething else entirely\n",
        ok=None,
    )
    assert mismatch.returncode != 0
    create_user(acme, "a@example.com", password_stdin=False, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert acme.rows("SELECT email FROM dashboard_users") == [("a@example.com",)]
