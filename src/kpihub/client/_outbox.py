"""A durable outbox: batches wait in a SQLite file until the server acknowledges them.

A batch is committed to the file (fsync'd) *before* it is sent and deleted only
after a 2xx, so a crash, a kill or a server outage at any moment leaves every
unacknowledged batch in the file. Each keeps the ``Idempotency-Key`` it was
first sent with: resending a batch whose answer was lost replays the server's
first answer instead of applying it twice (and elements are upserts anyway).

Batches are stored per target (the tenant URL and client id) so leftovers are
only ever sent where they were meant to go. A batch the server refuses for good
(4xx other than 401/403/404/429) moves to ``rejected`` with the server's errors.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from kpihub.client._closing import Closing
from kpihub.client._models import Batch

__all__ = ["Outbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    elements INTEGER NOT NULL,
    body BLOB NOT NULL,
    origins TEXT,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    elements INTEGER NOT NULL,
    body BLOB NOT NULL,
    status INTEGER NOT NULL,
    errors TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
"""


class Outbox(Closing):
    """``Outbox(path)``; ``":memory:"`` (the default) keeps nothing after the process."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def add(self, target: str, batches: Iterable[Batch]) -> int:
        """Queue ``batches`` for ``target`` in one transaction; how many were queued."""
        now = time.time()
        rows = [(target, b.key, b.elements, b.body, json.dumps(b.origins), now) for b in batches]
        with self._transaction():
            self._db.executemany(
                "INSERT INTO pending (target, idempotency_key, elements, body, origins, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def pending(self, target: str) -> Iterator[tuple[int, Batch]]:
        """The queued batches of ``target``, oldest first, read one at a time."""
        last = 0
        while True:
            row = self._db.execute(
                "SELECT seq, idempotency_key, elements, body, origins FROM pending "
                "WHERE target = ? AND seq > ? ORDER BY seq LIMIT 1",
                (target, last),
            ).fetchone()
            if row is None:
                return
            last, key, elements, body, origins = row
            shape = tuple(tuple(o) for o in json.loads(origins)) if origins else ()
            yield last, Batch(bytes(body), elements, key, shape)

    def count(self, target: str | None = None) -> tuple[int, int]:
        """(batches, elements) waiting, for ``target`` or for all targets."""
        where, params = ("WHERE target = ?", (target,)) if target is not None else ("", ())
        batches, elements = self._db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(elements), 0) FROM pending {where}",  # noqa: S608
            params,
        ).fetchone()
        return int(batches), int(elements)

    def targets(self) -> list[tuple[str, int]]:
        return [
            (t, int(n))
            for t, n in self._db.execute(
                "SELECT target, COUNT(*) FROM pending GROUP BY target ORDER BY MIN(seq)"
            )
        ]

    def done(self, seq: int) -> None:
        """The server acknowledged batch ``seq``: forget it."""
        self._db.execute("DELETE FROM pending WHERE seq = ?", (seq,))

    def reject(self, seq: int, status: int, errors: dict[str, list[str]]) -> None:
        """The server refused batch ``seq`` for good: keep it aside with the reasons."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO rejected (seq, target, idempotency_key, elements, body, status, "
                "errors, rejected_at) SELECT seq, target, idempotency_key, elements, body, ?, ?, ? "
                "FROM pending WHERE seq = ?",
                (status, json.dumps(errors), time.time(), seq),
            )
            self._db.execute("DELETE FROM pending WHERE seq = ?", (seq,))

    def rejected(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
