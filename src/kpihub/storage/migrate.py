"""Schema migrations (Alembic), configured in code so no alembic.ini is needed.

Alembic and SQLAlchemy are imported only when a migration really runs: every CLI
command checks the schema first, and that check must cost milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpihub.errors import InvalidInput, StoreUnavailable
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.urls import postgres_dsn, scheme, sqlalchemy_url, sqlite_path

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

HEAD = "0009"
"""The newest revision in ``migrations/versions`` (a test keeps the two in step)."""

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The head according to Alembic's own reading of the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every revision in ``migrations/versions`` (a schema this kpihub can read or upgrade)."""
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(database_url: str) -> str | None:
    """The schema revision of the database (None when it has no schema yet)."""
    if scheme(database_url) == "sqlite":
        path = sqlite_path(database_url)
        if not path.exists():
            return None
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise _unavailable(database_url, exc) from None
        return str(row[0]) if row else None
    if scheme(database_url) == "postgresql":
        return _current_revision_postgres(database_url)
    return _current_revision_alembic(database_url)


def _current_revision_postgres(database_url: str) -> str | None:
    """Read ``alembic_version`` with psycopg alone: importing SQLAlchemy and Alembic
    for this check would cost a quarter of a second on every CLI command."""
    import psycopg

    try:
        with psycopg.connect(postgres_dsn(database_url), connect_timeout=10) as conn:
            exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
            if not (exists and exists[0]):
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.Error as exc:
        raise _unavailable(database_url, exc) from None
    return str(row[0]) if row else None


def _current_revision_alembic(database_url: str) -> str | None:
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        raise _unavailable(database_url, getattr(exc, "orig", None) or exc) from None
    finally:
        engine.dispose()


def _engine(database_url: str) -> sa.Engine:
    """SQLAlchemy's engine, on SQLite with the library every other connection uses."""
    import sqlalchemy as sa

    options: dict[str, Any] = {"module": sqlite3} if scheme(database_url) == "sqlite" else {}
    return sa.create_engine(sqlalchemy_url(database_url), **options)


def _unavailable(database_url: str, reason: object) -> StoreUnavailable:
    return StoreUnavailable(
        f"KPIHUB_DATABASE_URL={database_url!r}: the database cannot be opened or migrated "
        f"({reason}). Check that it exists, is reachable and is writable."
    )


def ensure_schema(database_url: str) -> None:
    """Migrate to the head unless the database is there already (the cheap, usual case)."""
    if current_revision(database_url) != HEAD:
        upgrade(database_url)


def upgrade(database_url: str, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.util.exc import CommandError

    if scheme(database_url) == "sqlite":
        try:
            sqlite_path(database_url).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unavailable(database_url, exc) from None
    before = current_revision(database_url)
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except CommandError as exc:
        raise InvalidInput("REVISION", revision, f"{exc}. Use 'head' or a revision id.") from None
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        raise _unavailable(database_url, getattr(exc, "orig", None) or exc) from None
    finally:
        engine.dispose()
    after = current_revision(database_url)
    assert after is not None
    return before, after
