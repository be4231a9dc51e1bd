"""Storage: one protocol, one implementation per backend, picked by URL scheme."""

from __future__ import annotations

from kpihub.errors import InvalidInput
from kpihub.settings import Settings
from kpihub.storage.base import Storage
from kpihub.storage.urls import postgres_dsn, scheme

__all__ = ["Storage", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    """The store for ``settings.database_url`` (not started yet)."""
    kind = scheme(settings.database_url)
    if kind == "sqlite":
        from kpihub.storage.sqlite import SqliteStorage

        return SqliteStorage(settings.database_url, synchronous=settings.sqlite_synchronous)
    if kind == "postgresql":
        from kpihub.storage.postgres import PostgresStorage

        return PostgresStorage(
            postgres_dsn(settings.database_url),
            pool_size=settings.database_pool_size,
            timeout=settings.database_timeout,
        )
    raise InvalidInput(
        "KPIHUB_DATABASE_URL",
        settings.database_url,
        "Supported schemes: sqlite:///path.db, postgresql://user@host:5432/database.",
    )
