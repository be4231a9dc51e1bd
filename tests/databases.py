"""Test databases for every backend: a fresh SQLite file or a fresh PostgreSQL database.

PostgreSQL databases are cloned from a template migrated once per test session
(``CREATE DATABASE ... TEMPLATE``), which takes tens of milliseconds. The server is
``KPIHUB_TEST_POSTGRES_URL`` (default: the local one, trust auth). A server that
cannot be reached is an error, never a skip: the suite must run on both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

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
    def database(self) -> Iterator[str]:
        name = f"kpihub_t_{uuid.uuid4().hex[:12]}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        try:
            yield _with_database(ADMIN_URL, name)
        finally:
            with _admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'kpihub.db'}"
