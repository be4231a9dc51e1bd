"""``kpihub backup`` and ``kpihub restore`` with the real command, on both backends.

The main test backs up while a real ``kpihub serve`` is being pushed data, restores
into a fresh database and finds every element acknowledged before the backup began,
with its acknowledged value; the copy is one consistent snapshot (no batch in half),
and a server on the restored database takes the same client's credentials.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kpihub.storage.migrate import HEAD
from kpihub.storage.urls import scheme, sqlite_path
from tests import databases
from tests.databases import PostgresDatabases, sqlite_url
from tests.functional.server import (
    Creds,
    Kpihub,
    ServerProcess,
    get_token,
    new_client,
    running_server,
)
from tests.functional.test_cli import one_line

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"
ELEMENTS = 20  # per request


@pytest.fixture
def fresh(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """Makes empty databases (no schema at all) of the same backend as ``database_url``."""
    with contextlib.ExitStack() as stack:
        made = itertools.count()

        def make() -> str:
            if scheme(database_url) == "sqlite":
                # Folders that do not exist yet: the restore makes them.
                return sqlite_url(tmp_path / f"fresh-{next(made)}" / "restored")
            dbs: PostgresDatabases = request.getfixturevalue("postgres_databases")
            return stack.enter_context(dbs.database(migrated=False))

        yield make


@pytest.fixture
def fresh_url(fresh: Callable[[], str]) -> str:
    """An empty database of the same backend as ``database_url``."""
    return fresh()


def kpihub_in(directory: Path, database_url: str, **settings: str) -> Kpihub:
    directory.mkdir(parents=True, exist_ok=True)
    return Kpihub(directory, database_url, **settings)


def with_tenant(directory: Path, database_url: str, name: str = TENANT, **settings: str) -> Kpihub:
    cli = kpihub_in(directory, database_url, **settings)
    cli.run("tenant", "create", name)
    return cli


def assert_empty(database_url: str) -> None:
    """Nothing was written: no SQLite file, or a PostgreSQL database without tables."""
    if scheme(database_url) == "sqlite":
        assert sqlite_path(database_url).exists() is False
    else:
        tables = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        assert databases.rows(database_url, tables) == []


def value_of(element_id: str) -> float:
    """The value every element is sent with: a function of its id, so any row can be checked."""
    pusher, seq, i = (int(part) for part in element_id.split("-"))
    return pusher * 1_000_000 + seq * 100 + i + 0.25


class Pusher(threading.Thread):
    """Sends 20-element batches of new elements until told to stop; keeps every 200."""

    def __init__(
        self, server: ServerProcess, creds: Creds, number: int, stopping: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.creds = creds
        self.number = number
        self.stopping = stopping
        self.acked: list[tuple[float, list[str]]] = []  # (when the 200 arrived, element ids)
        self.failures: list[str] = []

    def run(self) -> None:
        with self.server.http(TENANT, timeout=30) as http:
            auth = {"Authorization": f"Bearer {get_token(http, self.creds)}"}
            seq = 0
            while not self.stopping.is_set():
                ids = [f"{self.number}-{seq}-{i}" for i in range(ELEMENTS)]
                response = http.post("/api/external/v1/kpi", json=body(ids, seq), headers=auth)
                if response.status_code == 200:
                    self.acked.append((time.monotonic(), ids))
                else:
                    self.failures.append(f"{response.status_code} {response.text}")
                seq += 1


def body(ids: list[str], seq: int) -> dict[str, Any]:
    return {
        "type": INTEGRATION,
        "version": "1.0.0",
        "context": "load",
        "data": [
            {
                "user_id": f"u{seq % 7}",
                "elements": [
                    {
                        "id": i,
                        "kpi": "sales",
                        "object_type": "number",
                        "value": value_of(i),
                        "timestamp": 1_700_000_000 + seq,
                    }
                    for i in ids
                ],
            }
        ],
    }


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_backup_under_load_restores_every_acknowledged_element(
    tmp_path: Path, database_url: str, fresh_url: str
) -> None:
    cli = with_tenant(tmp_path / "live", database_url, rate_limit="100000")
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    creds = new_client(cli, TENANT)
    path = tmp_path / "kpihub.backup"
    stopping = threading.Event()
    with running_server(cli) as server:
        pushers = [Pusher(server, creds, n, stopping) for n in range(3)]
        for p in pushers:
            p.start()
        try:
            wait_until(lambda: sum(len(p.acked) for p in pushers) >= 30, "30 acknowledgements")
            began = time.monotonic()
            made = cli.run("backup", str(path), "--json").json()
            ended = time.monotonic()
            wait_until(
                lambda: all(p.acked and p.acked[-1][0] > ended for p in pushers),
                "acknowledgements after the backup",
            )
        finally:
            stopping.set()
            for p in pushers:
                p.join(30)
    assert [f for p in pushers for f in p.failures] == []
    acked = [(when, ids) for p in pushers for when, ids in p.acked]
    before = {i for when, ids in acked if when < began for i in ids}
    during = [when for when, _ in acked if began <= when <= ended]
    assert during, "no batch was acknowledged while the backup ran: it was not under load"
    assert made["revision"] == HEAD
    assert made["format"] == ("sqlite" if scheme(database_url) == "sqlite" else "pg_dump-custom")
    assert made["bytes"] == path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []

    restored = kpihub_in(tmp_path / "restored", fresh_url)
    shutil.copy(cli.key_file, restored.key_file)  # the server key travels with the backup
    info = restored.run("restore", str(path), "--json").json()
    assert (info["revision"], info["upgraded_to"], info["replaced"]) == (HEAD, HEAD, False)
    assert info["tenants"] == 1

    values = dict(restored.rows("SELECT element_id, value FROM data_points WHERE context = 'load'"))
    missing = before - set(values)
    assert not missing, f"{len(missing)} acknowledged elements are not in the backup"
    assert all(values[i] == value_of(i) for i in before)
    # Whatever else the backup holds was sent too, with its value.
    assert all(v == value_of(i) for i, v in values.items())
    assert info["data_points"] == len(values) >= len(before)
    # One snapshot: every batch it holds has all its elements, every element its batch.
    per_batch = dict(restored.rows("SELECT batch_id, COUNT(*) FROM data_points GROUP BY batch_id"))
    batches = dict(restored.rows("SELECT id, created FROM batches WHERE http_status = 200"))
    assert per_batch == batches
    assert set(batches.values()) == {ELEMENTS}

    # The restored database serves: the client's secret, a token, one more batch.
    with running_server(restored) as again, again.http(TENANT) as http:
        token = get_token(http, creds)
        sent = http.post(
            "/api/external/v1/kpi",
            json=body(["9-0-0"], 0),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["created"] == 1


def test_backup_refuses_an_existing_path_unless_forced(tmp_path: Path, database_url: str) -> None:
    cli = with_tenant(tmp_path, database_url)
    path = tmp_path / "nightly.backup"
    path.write_text("yesterday's backup")

    refused = cli.run("backup", str(path), ok=False)
    message = one_line(refused.stderr)
    assert f"PATH: '{path}' already exists." in message
    assert "pass --force to replace it" in message
    assert path.read_text() == "yesterday's backup"

    cli.run("backup", str(path), "--force")
    assert path.read_bytes()[:5] in (b"SQLit", b"PGDMP")
    assert sorted(p.name for p in tmp_path.iterdir() if "nightly" in p.name) == ["nightly.backup"]


def test_backup_names_a_path_it_cannot_write(tmp_path: Path, database_url: str) -> None:
    cli = with_tenant(tmp_path, database_url)
    missing = tmp_path / "no" / "such" / "folder" / "k.backup"
    message = one_line(cli.run("backup", str(missing), ok=False).stderr)
    assert f"PATH: '{missing}' is not valid." in message
    assert f"The folder '{missing.parent}' does not exist" in message
    folder = one_line(cli.run("backup", str(tmp_path), "--force", ok=False).stderr)
    assert "It is a folder; name the backup file." in folder


def test_backup_of_a_database_without_kpihub_schema(
    tmp_path: Path, empty_database_url: str
) -> None:
    cli = Kpihub(tmp_path, empty_database_url)
    result = cli.run("backup", str(tmp_path / "k.backup"), ok=False)
    assert "holds no kpihub schema: nothing to back up" in one_line(result.stderr)
    assert not (tmp_path / "k.backup").exists()


def test_backup_refuses_to_overwrite_the_sqlite_database_itself(tmp_path: Path) -> None:
    # SQLite-only: a file path.
    cli = with_tenant(tmp_path, sqlite_url(tmp_path))
    assert cli.database is not None
    for target in (cli.database, Path(f"{cli.database}-wal")):
        result = cli.run("backup", str(target), "--force", ok=False)
        assert "It is the database itself; back up to another file." in one_line(result.stderr)
    assert cli.rows("SELECT name FROM tenants") == [(TENANT,)]


def test_postgres_backup_without_pg_dump_shows_the_command(
    tmp_path: Path, postgres_databases: PostgresDatabases
) -> None:
    # PostgreSQL-only: SQLite needs no tool.
    with postgres_databases.database() as url:
        cli = Kpihub(tmp_path, url)
        path = tmp_path / "k.dump"
        result = cli.run("backup", str(path), ok=False, env={"PATH": str(tmp_path)})
    message = one_line(result.stderr)
    assert "pg_dump not found on PATH" in message
    assert "postgresql-client" in message
    assert f'pg_dump --format=custom --file={path} "$KPIHUB_DATABASE_URL"' in message
    assert not path.exists()


def test_restore_refuses_a_database_with_data_unless_forced(
    tmp_path: Path, database_url: str, fresh_url: str
) -> None:
    source = with_tenant(tmp_path / "a", fresh_url, "acme")
    path = tmp_path / "acme.backup"
    source.run("backup", str(path))
    target = with_tenant(tmp_path / "b", database_url, "beta")

    refused = target.run("restore", str(path), ok=False)
    message = one_line(refused.stderr)
    assert "is not empty (1 tenant(s))" in message
    assert "pass --force to replace everything in it" in message
    assert target.rows("SELECT name FROM tenants") == [("beta",)]

    forced = target.run("restore", str(path), "--force", "--json").json()
    assert forced["replaced"] is True
    assert target.rows("SELECT name FROM tenants") == [("acme",)]


def test_restore_refuses_what_is_not_a_kpihub_backup(tmp_path: Path, fresh_url: str) -> None:
    target = Kpihub(tmp_path, fresh_url)
    text = tmp_path / "notes.txt"
    text.write_text("not a backup")
    plain = tmp_path / "plain.db"
    databases.execute(f"sqlite:///{plain}", "CREATE TABLE t (x)")
    other = tmp_path / "other.backup"
    if scheme(fresh_url) == "sqlite":
        other.write_bytes(b"PGDMP" + bytes(100))
        other_kind = "It is a PostgreSQL (pg_dump) backup"
    else:
        with_tenant(tmp_path / "lite", sqlite_url(tmp_path / "lite")).run("backup", str(other))
        other_kind = "It is a SQLite backup"
    cases = {
        tmp_path / "missing.backup": f"PATH: there is no file '{tmp_path / 'missing.backup'}'.",
        text: "It is neither a SQLite database nor a pg_dump archive",
        tmp_path: "It is a folder; give the backup file.",
        other: other_kind,
    }
    if scheme(fresh_url) == "sqlite":
        cases[plain] = "It holds no kpihub schema (no alembic_version); it is not a kpihub backup."
    for path, expected in cases.items():
        message = one_line(target.run("restore", str(path), ok=False).stderr)
        assert expected in message, message
    assert_empty(fresh_url)


def test_restore_upgrades_an_older_backup(tmp_path: Path, fresh: Callable[[], str]) -> None:
    old_url, fresh_url = fresh(), fresh()
    old = kpihub_in(tmp_path / "old", old_url, auto_migrate="false")
    old.run("db", "upgrade", "0003")
    databases.execute(
        old_url,
        "INSERT INTO tenants (name, timezone, created_at) VALUES ('acme', 'UTC', 1)",
    )
    path = tmp_path / "old.backup"
    assert old.json("backup", str(path))["revision"] == "0003"
    assert old.rows("SELECT version_num FROM alembic_version") == [("0003",)]  # not migrated

    target = kpihub_in(tmp_path / "new", fresh_url)
    info = target.json("restore", str(path))
    assert (info["revision"], info["upgraded_to"]) == ("0003", HEAD)
    text = target.run("restore", str(path), "--force").stdout
    assert f"schema 0003, upgraded to {HEAD}" in one_line(text)
    assert target.json("retention", "show") == [{"tenant": "acme", "days": None}]


def test_restore_refuses_an_unknown_revision(
    tmp_path: Path, database_url: str, fresh_url: str
) -> None:
    source = with_tenant(tmp_path / "a", database_url)
    databases.execute(database_url, "UPDATE alembic_version SET version_num = '9999'")
    path = tmp_path / "future.backup"
    source.run("backup", str(path))

    target = kpihub_in(tmp_path / "b", fresh_url)
    message = one_line(target.run("restore", str(path), ok=False).stderr)
    assert "schema revision '9999', which this kpihub does not know" in message
    known = ", ".join(f"{n:04d}" for n in range(1, int(HEAD) + 1))
    assert f"it knows {known}" in message
    assert_empty(fresh_url)


def test_a_damaged_backup_changes_nothing(
    tmp_path: Path, database_url: str, fresh_url: str
) -> None:
    source = with_tenant(tmp_path / "a", fresh_url, "acme")
    # Enough rows that the damage (the last tenth cut off) falls in the table data: on
    # PostgreSQL pg_restore then fails half-way through, after psql began the restore.
    databases.execute(
        fresh_url,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
        "INSERT INTO data_points (tenant_id, environment, type, context, element_id, kpi, "
        "object_type, value, ts, batch_id, updated_at) SELECT 1, 'testing', 'acme-pos', "
        "'sales', CAST(i AS TEXT), 'revenue', 'number', i * 1.5, i, 'b', 0 FROM n",
    )
    path = tmp_path / "whole.backup"
    source.run("backup", str(path))
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(path.read_bytes()[: path.stat().st_size * 9 // 10])
    target = with_tenant(tmp_path / "b", database_url, "beta")

    message = one_line(target.run("restore", str(damaged), "--force", ok=False).stderr)
    if scheme(database_url) == "sqlite":
        assert f"PATH: '{damaged}' is not valid. It cannot be read as a SQLite database" in message
    else:
        assert "pg_restore failed, nothing was restored" in message
    assert target.rows("SELECT name FROM tenants") == [("beta",)]
    assert target.rows("SELECT COUNT(*) FROM data_points") == [(0,)]
