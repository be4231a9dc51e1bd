"""Fixtures every tier may use: a database URL per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import BACKENDS, PostgresDatabases, sqlite_url


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    databases.start()
    try:
        yield databases
    finally:
        databases.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated-or-empty database of each backend in turn."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database() as url:
        yield url
