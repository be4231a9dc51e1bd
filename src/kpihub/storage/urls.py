"""Database URLs: the scheme picks the backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from kpihub.errors import InvalidInput

_FIX = "Use sqlite:///relative/path.db or sqlite:////absolute/path.db."
_SUPPORTED = "Supported: sqlite:///path.db and postgresql://user@host:5432/database."


def scheme(url: str) -> str:
    """``sqlite`` or ``postgresql`` (``postgres`` and driver suffixes normalised)."""
    kind = urlsplit(url).scheme.split("+")[0]
    return "postgresql" if kind == "postgres" else kind


def postgres_dsn(url: str) -> str:
    """The libpq-style URL asyncpg takes (no SQLAlchemy driver suffix)."""
    return "postgresql://" + url.split("://", 1)[1]


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL (three slashes: relative; four: absolute)."""
    if scheme(url) != "sqlite" or not url.startswith("sqlite:///"):
        raise InvalidInput("KPIHUB_DATABASE_URL", url, _FIX)
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise InvalidInput("KPIHUB_DATABASE_URL", url, "An in-memory database loses data; " + _FIX)
    return Path(path)


def display_url(url: str) -> str:
    """``url`` with its password (if any) hidden, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def sqlalchemy_url(url: str) -> str:
    """The URL SQLAlchemy (and so Alembic) should use for ``url``."""
    kind = scheme(url)
    if kind == "sqlite":
        return f"sqlite:///{sqlite_path(url)}"
    if kind == "postgresql":
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    raise InvalidInput("KPIHUB_DATABASE_URL", url, _SUPPORTED)
