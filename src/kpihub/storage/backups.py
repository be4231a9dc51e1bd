"""``kpihub backup`` and ``kpihub restore``: a whole database to one file and back.

These work on the database URL, like the migrations (``migrate.py``), not through a
started ``Storage``: a restore fills a database that has no schema yet and replaces
everything in it, and neither needs the store's writer or pool.

* SQLite: the backup is SQLite's online backup (``sqlite3.Connection.backup``) in one
  step, so it reads one snapshot while the server keeps writing (in WAL mode readers
  never block the writer); the file is a plain SQLite database. A restore copies it
  into the target with the same API, in one transaction.
* PostgreSQL: the backup is ``pg_dump --format=custom`` (one snapshot too); a restore
  is ``pg_restore`` into ``psql --single-transaction``, so it applies whole or not at
  all. Both tools come with PostgreSQL's client package; without them the command
  says what to run.

A backup is written to a temporary file beside its path and renamed into place when
complete, so a path never holds half a backup. A restore checks that the file is a
kpihub database at a revision this kpihub knows, refuses a target that holds data
(unless forced), and upgrades an older schema with the migrations afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kpihub.errors import Conflict, InvalidInput, NotFound
from kpihub.storage import _postgres_backup, _sqlite_backup
from kpihub.storage.migrate import current_revision, known_revisions, upgrade
from kpihub.storage.urls import display_url, scheme

SQLITE = "sqlite"
PG_DUMP = "pg_dump-custom"
_MAGIC = {b"SQLite format 3\x00": SQLITE, b"PGDMP": PG_DUMP}
_BACKEND_FORMAT = {"sqlite": SQLITE, "postgresql": PG_DUMP}


@dataclass(frozen=True)
class BackupInfo:
    path: str
    format: str  # "sqlite" or "pg_dump-custom"
    bytes: int
    revision: str  # the schema revision of the copy


@dataclass(frozen=True)
class RestoreInfo:
    path: str
    format: str
    revision: str  # the backup's schema revision
    upgraded_to: str  # the schema revision after the restore (migrations applied)
    replaced: bool  # the target held data that was replaced (--force)
    tenants: int
    data_points: int


def backup(database_url: str, target: Path, *, force: bool = False) -> BackupInfo:
    """Copy the whole database at ``database_url`` to the new file ``target``."""
    kind = scheme(database_url)
    if kind not in _BACKEND_FORMAT:
        raise InvalidInput(
            "KPIHUB_DATABASE_URL", database_url, "Use sqlite:///path.db or postgresql://..."
        )
    if kind == "sqlite":
        _sqlite_backup.check_not_the_database(database_url, target)
    if current_revision(database_url) is None:
        raise NotFound(
            f"KPIHUB_DATABASE_URL={display_url(database_url)!r} holds no kpihub schema: "
            "nothing to back up. Check the setting."
        )
    _check_target(target, force)
    if kind == "postgresql":
        _postgres_backup.require_tools("pg_dump", command=_postgres_backup.dump_hint(target))
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    partial = Path(name)
    try:
        if kind == "sqlite":
            revision = _sqlite_backup.backup(database_url, partial)
        else:
            _postgres_backup.backup(database_url, partial)
            revision = _postgres_backup.archive_revision(partial)
        _publish(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(str(target), _BACKEND_FORMAT[kind], target.stat().st_size, revision or "")


def restore(database_url: str, source: Path, *, force: bool = False) -> RestoreInfo:
    """Fill the (empty) database at ``database_url`` from the backup ``source``."""
    kind = scheme(database_url)
    fmt = backup_format(source)
    if fmt != _BACKEND_FORMAT.get(kind):
        where = "a SQLite" if fmt == SQLITE else "a PostgreSQL (pg_dump)"
        into = "sqlite:///path.db" if fmt == SQLITE else "postgresql://..."
        raise InvalidInput(
            "PATH",
            str(source),
            f"It is {where} backup and KPIHUB_DATABASE_URL is {display_url(database_url)!r}; "
            f"restore it into a database of the same kind (KPIHUB_DATABASE_URL={into}).",
        )
    if kind == "sqlite":
        revision = _sqlite_backup.archive_revision(source)
    else:
        _postgres_backup.require_tools(
            "pg_restore", "psql", command=_postgres_backup.restore_hint(source)
        )
        revision = _postgres_backup.archive_revision(source)
    if revision is None:
        raise InvalidInput(
            "PATH",
            str(source),
            "It holds no kpihub schema (no alembic_version); it is not a kpihub backup.",
        )
    known = known_revisions()
    if revision not in known:
        raise InvalidInput(
            "PATH",
            str(source),
            f"It is a kpihub database at schema revision {revision!r}, which this kpihub does "
            f"not know (it knows {', '.join(sorted(known))}); restore it with the kpihub "
            "version that made it, or a newer one.",
        )
    module = _sqlite_backup if kind == "sqlite" else _postgres_backup
    held = module.held_data(database_url, source)
    if held and not force:
        raise Conflict(
            f"KPIHUB_DATABASE_URL={display_url(database_url)!r} is not empty ({held}). Restore "
            "into a fresh database, or pass --force to replace everything in it (stop every "
            "server using it first)."
        )
    module.restore(database_url, source)
    _, after = upgrade(database_url)
    tenants, points = module.counts(database_url)
    return RestoreInfo(
        path=str(source),
        format=fmt,
        revision=revision,
        upgraded_to=after,
        replaced=bool(held),
        tenants=tenants,
        data_points=points,
    )


def backup_format(path: Path) -> str:
    """``sqlite`` or ``pg_dump-custom`` from the file's first bytes; an error otherwise."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise NotFound(f"PATH: there is no file {str(path)!r}.") from None
    except IsADirectoryError:
        raise InvalidInput("PATH", str(path), "It is a folder; give the backup file.") from None
    except OSError as exc:
        raise InvalidInput("PATH", str(path), f"It cannot be read: {exc.strerror}.") from None
    for magic, fmt in _MAGIC.items():
        if head.startswith(magic):
            return fmt
    raise InvalidInput(
        "PATH",
        str(path),
        "It is neither a SQLite database nor a pg_dump archive; give a file made by "
        "'kpihub backup'.",
    )


def _check_target(target: Path, force: bool) -> None:
    if not target.parent.is_dir():
        raise InvalidInput(
            "PATH", str(target), f"The folder {str(target.parent)!r} does not exist; create it."
        )
    if target.is_dir():
        raise InvalidInput("PATH", str(target), "It is a folder; name the backup file.")
    if target.exists() and not force:
        raise Conflict(
            f"PATH: {str(target)!r} already exists. Choose another path, or pass --force to "
            "replace it."
        )


def _publish(partial: Path, target: Path) -> None:
    """Make the complete file durable, then give it its name (atomic on POSIX)."""
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
