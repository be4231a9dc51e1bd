"""Storage: one protocol, one implementation per backend, picked by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kpihub.errors import InvalidInput
from kpihub.storage.base import NullObserver, Storage, StoreObserver
from kpihub.storage.urls import postgres_dsn, scheme

if TYPE_CHECKING:  # the SQLite writer process imports this package, and needs no settings
    from kpihub.settings import Settings

__all__ = ["Storage", "StoreObserver", "open_storage"]


def open_storage(settings: Settings, observer: StoreObserver | None = None) -> Storage:
    """The store for ``settings.database_url`` (not started yet), reporting to ``observer``."""
    kind = scheme(settings.database_url)
    observer = observer or NullObserver()
    if kind == "sqlite":
        from kpihub.storage.sqlite import SqliteStorage

        return SqliteStorage(
            settings.database_url,
            synchronous=settings.sqlite_synchronous,
            mmap_size=settings.sqlite_mmap_size,
            busy_timeout=settings.database_timeout,
            observer=observer,
        )
    if kind == "postgresql":
        from kpihub.storage.postgres import PostgresStorage

        return PostgresStorage(
            postgres_dsn(settings.database_url),
            pool_size=settings.database_pool_size,
            timeout=settings.database_timeout,
            observer=observer,
        )
    raise InvalidInput(
        "KPIHUB_DATABASE_URL",
        settings.database_url,
        "Supported schemes: sqlite:///path.db, postgresql://user@host:5432/database.",
    )
