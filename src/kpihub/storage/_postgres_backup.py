"""PostgreSQL's side of ``backups.py``: ``pg_dump``, ``pg_restore`` and ``psql``.

The password never appears on a command line (where ``ps`` shows it): the tools get
the connection without it and read ``PGPASSWORD`` from their environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from kpihub.errors import InvalidInput, NotFound, StoreUnavailable
from kpihub.storage.urls import postgres_dsn

_PUMP = 1 << 16


def dump_hint(target: Path) -> str:
    return f'pg_dump --format=custom --file={target} "$KPIHUB_DATABASE_URL"'


def restore_hint(source: Path) -> str:
    return (
        f"pg_restore --no-owner --no-privileges --single-transaction --exit-on-error "
        f'--dbname="$KPIHUB_DATABASE_URL" {source}; kpihub db upgrade'
    )


def require_tools(*names: str, command: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise NotFound(
            f"{' and '.join(missing)} not found on PATH: kpihub uses PostgreSQL's own tools "
            "for PostgreSQL. Install its client package (Debian: postgresql-client, of the "
            f"server's major version or newer), or run it yourself: {command}"
        )


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found is not None  # require_tools checked
    return found


def _connection(database_url: str) -> tuple[str, dict[str, str]]:
    """The libpq connection string without the password, and the tools' environment."""
    params = conninfo_to_dict(postgres_dsn(database_url))
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def backup(database_url: str, partial: Path) -> None:
    conninfo, env = _connection(database_url)
    done = subprocess.run(  # noqa: S603 (a tool from PATH, arguments as a list, no shell)
        [_tool("pg_dump"), "--format=custom", f"--file={partial}", f"--dbname={conninfo}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise StoreUnavailable(f"pg_dump failed: {done.stderr.strip()}")


def archive_revision(source: Path) -> str | None:
    """The revision in the archive's ``alembic_version`` (None: the archive has none)."""
    done = subprocess.run(  # noqa: S603 (a tool from PATH, arguments as a list, no shell)
        [_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise InvalidInput("PATH", str(source), f"pg_restore cannot read it: {done.stderr.strip()}")
    lines = iter(done.stdout.splitlines())
    for line in lines:
        if line.startswith("COPY ") and "alembic_version" in line:
            value = next(lines, "\\.")
            return None if value == "\\." else value.strip()
    return None


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _connect(database_url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(postgres_dsn(database_url), autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"The target database cannot be reached ({exc}). Create it first (createdb) and "
            "check KPIHUB_DATABASE_URL."
        ) from exc


def held_data(database_url: str, source: Path) -> str:
    del source
    with _connect(database_url) as conn:
        tables = _tables(conn)
        if not tables:
            return ""
        if "alembic_version" not in tables or "tenants" not in tables:
            return "tables that are not kpihub's: " + ", ".join(tables)
        row = conn.execute("SELECT COUNT(*) FROM tenants").fetchone()
        tenants = int(row[0]) if row else 0
    return f"{tenants} tenant(s)" if tenants else ""


def restore(database_url: str, source: Path) -> None:
    """Drop what the target's schema holds, then load the archive: one transaction.

    ``pg_restore`` writes the archive as SQL into ``psql --single-transaction``. The
    bytes are pumped here rather than through a shell pipe, so that when pg_restore
    fails half-way, psql is killed before it sees the end of its input and commits:
    the target is then exactly as it was.
    """
    conninfo, env = _connection(database_url)
    with _connect(database_url) as conn:
        drop = [
            sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(t)).as_string(conn)
            for t in _tables(conn)
        ]
    drops = [arg for statement in drop for arg in ("-c", statement)]
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as psql_err:
        reader = subprocess.Popen(  # noqa: S603 (as above)
            [_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(source)],
            stdout=subprocess.PIPE,
            stderr=dump_err,
            env=env,
        )
        writer = subprocess.Popen(  # noqa: S603 (as above)
            [
                _tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                *drops,
                "--file=-",
                f"--dbname={conninfo}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=env,
        )
        reader_ok = _pump(reader, writer)
        if not reader_ok:
            writer.kill()
        assert writer.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            writer.stdin.close()
        writer.wait()
        if not reader_ok:
            raise StoreUnavailable(f"pg_restore failed, nothing was restored: {_text(dump_err)}")
        if writer.returncode != 0:
            raise StoreUnavailable(f"The restore failed and changed nothing: {_text(psql_err)}")


def _pump(reader: subprocess.Popen[bytes], writer: subprocess.Popen[bytes]) -> bool:
    """Copy pg_restore's output into psql; False when pg_restore failed (then psql
    must not commit). When psql stops first, its exit status tells what happened."""
    assert reader.stdout is not None and writer.stdin is not None
    try:
        while chunk := reader.stdout.read(_PUMP):
            writer.stdin.write(chunk)
    except BrokenPipeError:  # psql stopped on an error; its stderr says which
        reader.kill()
        reader.wait()
        return True
    finally:
        reader.stdout.close()
    return reader.wait() == 0


def _text(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace").strip()


def counts(database_url: str) -> tuple[int, int]:
    with _connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM tenants), (SELECT COUNT(*) FROM data_points)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
