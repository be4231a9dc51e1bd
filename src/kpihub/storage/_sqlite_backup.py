"""SQLite's side of ``backups.py``: the online backup API, both ways."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from kpihub.errors import InvalidInput, NotFound, StoreUnavailable
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage._sqlite_staging import merge_copy
from kpihub.storage.urls import sqlite_path

BUSY_TIMEOUT = 10.0  # seconds to wait for a lock held by the server's writer


@contextlib.contextmanager
def _open(path: Path, mode: str) -> Iterator[sqlite3.Connection]:
    """A connection that never creates a missing file (``mode`` ``ro`` or ``rw``)."""
    uri = f"{path.absolute().as_uri()}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def check_not_the_database(database_url: str, target: Path) -> None:
    database = sqlite_path(database_url).absolute()
    names = {database, Path(f"{database}-wal"), Path(f"{database}-shm")}
    if target.absolute() in names or (
        target.exists() and database.exists() and target.samefile(database)
    ):
        raise InvalidInput(
            "PATH", str(target), "It is the database itself; back up to another file."
        )


def backup(database_url: str, partial: Path) -> str | None:
    """Copy the database into the empty file ``partial``; returns the copy's revision."""
    database = sqlite_path(database_url)
    if not database.exists():
        raise NotFound(f"There is no SQLite database at {str(database)!r} (KPIHUB_DATABASE_URL).")
    try:
        with _open(database, "rw") as src, _open(partial, "rw") as dst:
            # One step (pages=-1): one read transaction, one consistent snapshot. In
            # several steps, every commit of the server would restart the copy.
            src.backup(dst)
            # Points the server had staged, not merged yet, are in data_points in the copy.
            merge_copy(dst)
            # A self-contained file: no -wal beside it, readable anywhere.
            dst.execute("PRAGMA journal_mode = DELETE")
            return _revision(dst)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"The backup of {str(database)!r} failed: {exc}") from exc


def archive_revision(source: Path) -> str | None:
    """The schema revision of the backup file (None: no kpihub schema); checks it first."""
    try:
        with _open(source, "ro") as conn:
            (check,) = conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise InvalidInput(
                    "PATH",
                    str(source),
                    f"The SQLite file is damaged ({check}); use another backup.",
                )
            return _revision(conn)
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(
            "PATH", str(source), f"It cannot be read as a SQLite database ({exc})."
        ) from exc


def held_data(database_url: str, source: Path) -> str:
    """What the target holds that a restore would replace ("" when nothing)."""
    database = sqlite_path(database_url)
    if not database.exists():
        return ""
    if database.samefile(source):
        raise InvalidInput(
            "PATH", str(source), "It is the database KPIHUB_DATABASE_URL names; nothing to do."
        )
    try:
        with _open(database, "ro") as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            }
            return _describe(tables, conn)
    except sqlite3.Error as exc:
        raise StoreUnavailable(
            f"The SQLite database {str(database)!r} cannot be read: {exc}"
        ) from exc


def _describe(tables: set[str], conn: sqlite3.Connection) -> str:
    if not tables:
        return ""
    if "alembic_version" not in tables or "tenants" not in tables:
        return "tables that are not kpihub's: " + ", ".join(sorted(tables))
    (tenants,) = conn.execute("SELECT COUNT(*) FROM tenants").fetchone()
    return f"{tenants} tenant(s)" if tenants else ""


def restore(database_url: str, source: Path) -> None:
    """Replace the target database's whole content with ``source``, in one transaction."""
    database = sqlite_path(database_url)
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        with (
            _open(source, "ro") as src,
            contextlib.closing(
                sqlite3.connect(database, timeout=BUSY_TIMEOUT, isolation_level=None)
            ) as dst,
        ):
            src.backup(dst)
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(
            f"The restore into {str(database)!r} failed and changed nothing: {exc}"
        ) from exc


def counts(database_url: str) -> tuple[int, int]:
    with _open(sqlite_path(database_url), "ro") as conn:
        (tenants,) = conn.execute("SELECT COUNT(*) FROM tenants").fetchone()
        (points,) = conn.execute("SELECT COUNT(*) FROM data_points").fetchone()
    return int(tenants), int(points)


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return str(row[0]) if row else None
