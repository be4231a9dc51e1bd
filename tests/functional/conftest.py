from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kpihub.app import create_app
from kpihub.settings import Settings
from tests.functional.harness import Credentials, Harness


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


@pytest.fixture
def harness(settings: Settings) -> Iterator[Harness]:
    with TestClient(create_app(settings), base_url="http://acme.localhost") as client:
        h = Harness(client)
        h.tenant()
        h.integration()
        yield h


@pytest.fixture
def creds(harness: Harness) -> Credentials:
    return harness.client()


@pytest.fixture
def token(harness: Harness, creds: Credentials) -> str:
    return harness.token(creds)
