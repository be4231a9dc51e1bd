"""Test databases for every backend: a fresh SQLite file or a fresh PostgreSQL database.

PostgreSQL databases are cloned from a template migrated once per test session
(``CREATE DATABASE ... TEMPLATE``), which takes tens of milliseconds. The server is
``KPIHUB_TEST_POSTGRES_URL`` (default: the local one, trust auth). A server that
cannot be reached is an error, never a skip: the suite must run on both backends.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage._sqlite_staging import merge_copy
from kpihub.storage.urls import scheme, sqlite_path

BACKENDS = ("sqlite", "postgres")
ADMIN_URL = os.environ.get(
    "KPIHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


class PostgresDatabases:
    """Creates databases from one migrated template and drops them afterwards."""

    def __init__(self) -> None:
        self.template = f"kpihub_tmpl_{uuid.uuid4().hex[:12]}"

    def start(self) -> None:
        from kpihub.storage.migrate import upgrade

        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        upgrade(_with_database(ADMIN_URL, self.template))

    def stop(self) -> None:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')

    @contextmanager
    def database(self, *, migrated: bool = True) -> Iterator[str]:
        """A new database: a clone of the migrated template, or empty (no schema at all)."""
        name = f"kpihub_t_{uuid.uuid4().hex[:12]}"
        template = self.template if migrated else "template0"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield _with_database(ADMIN_URL, name)
        finally:
            with _admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def broken(database_url: str) -> Iterator[None]:
    """The store fails under a running app. SQLite: another process holds the write lock
    until the block ends. PostgreSQL: the database is dropped (for good)."""
    if scheme(database_url) == "sqlite":
        with closing(sqlite3.connect(sqlite_path(database_url), isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            yield
            other.execute("ROLLBACK")
        return
    name = urlsplit(database_url).path.lstrip("/")
    with _admin() as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    yield


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'kpihub.db'}"


# -- reading what a store wrote, through a connection of our own --------------------------


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1..$n`` (quoted text left alone)."""
    out: list[str] = []
    quote: str | None = None
    n = 0
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


def _plain(value: Any) -> Any:
    """The same Python type for the same stored value on every backend.

    PostgreSQL's booleans become 0/1 as SQLite stores them, NUMERIC results (SUM)
    become int or float, BYTEA/BLOB always come back as ``bytes``.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


STAGING = "data_points_incoming"
MERGE_WAIT = 1.0  # seconds: a running server's writer merges after 50 ms without writes


def wait_merged(path: Path) -> None:
    """Let the SQLite store's writer merge every staged point into data_points first.

    kpihub's own reads merge before they read; a test reading the file directly waits
    for the writer's idle merge instead. Points still staged after ``MERGE_WAIT`` have
    no running writer (the server was killed): they are merged here, as the next start
    would merge them. That merges happen at all is tested in test_sqlite_staging.py.
    """
    uri = path.absolute().as_uri() + "?mode=ro"
    deadline = time.monotonic() + MERGE_WAIT
    with closing(sqlite3.connect(uri, uri=True)) as lite:
        try:
            lite.execute(f"SELECT 1 FROM {STAGING} LIMIT 1").fetchone()
        except sqlite3.OperationalError:  # not migrated (yet): nothing can be staged
            return
        while lite.execute(f"SELECT 1 FROM {STAGING} LIMIT 1").fetchone():
            if time.monotonic() > deadline:
                with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as rw:
                    merge_copy(rw)
                return
            time.sleep(0.01)


def query(database_url: str, sql: str, *params: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of a read-only query with ``?`` placeholders.

    A short-lived connection of its own (as another process would read), so what it
    sees is what was committed, not what the app holds in memory. On SQLite, a query
    of ``data_points`` first waits for staged points to be merged (``wait_merged``).
    """
    if scheme(database_url) == "sqlite":
        uri = sqlite_path(database_url).absolute().as_uri() + "?mode=ro"
        if "data_points" in sql:
            wait_merged(sqlite_path(database_url))
        with closing(sqlite3.connect(uri, uri=True)) as lite:
            cur = lite.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            found = cur.fetchall()
    else:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as pg:
            pg.read_only = True
            with psycopg.RawCursor(pg) as raw:
                raw.execute(_numbered(sql), params)
                names = [d.name for d in raw.description or ()]
                found = raw.fetchall()
    return names, [tuple(_plain(v) for v in row) for row in found]


def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of a read-only query with ``?`` placeholders, as tuples."""
    return query(database_url, sql, *params)[1]


def records(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """The rows of a read-only query with ``?`` placeholders, keyed by column name."""
    names, found = query(database_url, sql, *params)
    return [dict(zip(names, row, strict=True)) for row in found]


def execute(database_url: str, sql: str, *params: Any) -> None:
    """Run one writing statement (``?`` placeholders) and commit it, as another process
    would (for tests that set up what kpihub itself would never write)."""
    if scheme(database_url) == "sqlite":
        with closing(sqlite3.connect(sqlite_path(database_url))) as lite, lite:
            lite.execute(sql, params)
    else:
        with (
            psycopg.connect(database_url, autocommit=True, connect_timeout=5) as pg,
            psycopg.RawCursor(pg) as raw,
        ):
            raw.execute(_numbered(sql), params)
