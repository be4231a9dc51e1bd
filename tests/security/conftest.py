"""The security tier: attacks on the real app over HTTP, on SQLite and PostgreSQL.

The functional tier's fixtures (``harness``, ``creds``, ``token``: a fresh app per
test) are reused as they are; ``shared`` is one app for a whole module, for tests that
leave nothing the next one could trip over.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.conftest import creds, harness, make_settings, settings, token
from tests.functional.harness import Harness, open_harness

__all__ = ["creds", "harness", "settings", "shared", "token"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Iterator[Harness]:
    """One app (tenant ``acme`` with its integration) for the whole module."""
    directory = tmp_path_factory.mktemp("app")
    with open_harness(make_settings(directory, database_url=module_database_url)) as h:
        yield h
