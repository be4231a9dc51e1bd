"""Jobs and renders that SQLite's writer process runs for the tests.

They cross a socket to the writer process, pickled by reference, so they live at
module level; the process signals back through files, as nothing else is shared.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kpihub.domain import BatchCounts
from kpihub.storage._sqlite_driver import sqlite3
from tests.integration.stores import render

HOLD_LIMIT = 10.0  # seconds


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + HOLD_LIMIT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {HOLD_LIMIT} s")
        time.sleep(0.001)


def hold(entered: Path, release: Path, counts: BatchCounts) -> bytes:
    """A render that keeps the writer busy: says so in ``entered``, waits for ``release``."""
    entered.touch()
    _wait_for(release)
    return render(counts)


def ends_transaction(conn: sqlite3.Connection) -> None:
    """What SQLite does on SQLITE_FULL, IOERR, BUSY...: the whole transaction is gone."""
    conn.execute("ROLLBACK")
    raise sqlite3.OperationalError("database or disk is full")


def wait_until_exists(path: Path) -> bool:
    try:
        _wait_for(path)
    except TimeoutError:
        return False
    return True


def process_id(conn: sqlite3.Connection) -> int:
    return os.getpid()


def library(conn: sqlite3.Connection) -> tuple[str, str, int]:
    """The writer's SQLite module, its SQLite version and its ``secure_delete`` setting."""
    (version,) = conn.execute("SELECT sqlite_version()").fetchone()
    (secure,) = conn.execute("PRAGMA secure_delete").fetchone()
    return type(conn).__module__, version, secure


def echo(data: bytes, conn: sqlite3.Connection) -> bytes:
    return data


class _Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("cannot cross")
        self.callback = lambda: None


def raise_unpicklable(conn: sqlite3.Connection) -> None:
    raise _Unpicklable


def synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def temp_store(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA temp_store").fetchone()[0])


def imports(names: tuple[str, ...], conn: sqlite3.Connection) -> list[str]:
    """Which of ``names`` the writer process has imported."""
    return [name for name in names if name in sys.modules]


def mapped(conn: sqlite3.Connection) -> int:
    """How many bytes of the database the writer's connection maps (``mmap_size``)."""
    return int(conn.execute("PRAGMA mmap_size").fetchone()[0])
