from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kpihub.settings import Settings
from tests.functional.harness import Credentials, Harness, open_harness
from tests.functional.server import Kpihub, ServerProcess, running_server


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'kpihub.db'}",
        "secret_key": "functional-test-server-key-0123456789",
        "secret_key_file": tmp_path / "secret.key",
        "sqlite_synchronous": "normal",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@contextmanager
def app_on(
    tmp_path: Path,
    database_url: str,
    *,
    tenant: bool = True,
    integration: bool = True,
    **overrides: object,
) -> Iterator[Harness]:
    """A harness on another real app (node) whose settings differ by ``overrides``."""
    settings = make_settings(tmp_path, database_url=database_url, **overrides)
    with open_harness(settings, tenant=tenant, integration=integration) as h:
        yield h


@pytest.fixture
def harness(settings: Settings) -> Iterator[Harness]:
    with open_harness(settings) as h:
        yield h


@pytest.fixture
def creds(harness: Harness) -> Credentials:
    return harness.client()


@pytest.fixture
def token(harness: Harness, creds: Credentials) -> str:
    return harness.token(creds)


# A module that defines a module-scoped ``cli`` fixture (a ``Kpihub``) gets one real
# server process for its tests.


@pytest.fixture(scope="module")
def server(cli: Kpihub) -> Iterator[ServerProcess]:
    """One server for the module; tests may restart or kill it, but leave it running."""
    with running_server(cli) as process:
        yield process


@pytest.fixture
def live(server: ServerProcess) -> ServerProcess:
    """The shared server, started again if an earlier test left it stopped."""
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    return server
