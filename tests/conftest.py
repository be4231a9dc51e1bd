"""Fixtures every tier may use: a database URL per backend; the Hypothesis profile."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.databases import BACKENDS, PostgresDatabases, sqlite_url
from tests.redis_server import delete_prefix, require_redis, unique_prefix

# CI (CI=true) replays the same examples on every run, so a red build is reproducible and
# not a timing accident; a developer's runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


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
    """A fresh database of each backend in turn.

    SQLite: a file that does not exist yet (the app or ``upgrade`` creates it);
    PostgreSQL: a database already migrated to the head (a clone of the template).
    """
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database() as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``database_url`` shared by a whole module (for modules whose tests share one app)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("module-db"))
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each backend in turn with no schema at all (nothing migrated)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database(migrated=False) as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """The test Redis; the test fails (never skips) when it does not answer."""
    return require_redis()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test's own, deleted afterwards."""
    prefix = unique_prefix()
    yield prefix
    delete_prefix(prefix, redis_url)
