"""Schema migrations on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kpihub.errors import InvalidInput
from kpihub.storage.migrate import HEAD, current_revision, ensure_schema, head_revision, upgrade


def test_head_constant_matches_the_migration_scripts() -> None:
    assert head_revision() == HEAD


def test_upgrade_creates_every_table_in_a_new_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'k.db'}"
    assert current_revision(url) is None

    before, after = upgrade(url)

    assert (before, after) == (None, HEAD)
    with sqlite3.connect(tmp_path / "new" / "folder" / "k.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    expected = {"tenants", "integrations", "clients", "signing_keys", "revoked_tokens"}
    assert expected | {"batches", "data_points", "idempotency_keys"} <= tables


def test_ensure_schema_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    ensure_schema(url)
    ensure_schema(url)
    assert current_revision(url) == HEAD


def test_unknown_revision_names_the_value(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        upgrade(f"sqlite:///{tmp_path / 'k.db'}", "nonsense")
    assert "nonsense" in caught.value.message
