"""The SQLite writer process: owns the write connection, commits jobs in groups, merges.

Why a process of its own: SQLite allows one writer at a time, so one writer serves
every request, and it is busy: under load it runs all the time. As a thread of the
server it shared the server's GIL with the event loop, and each statement it ran gave
the GIL away and then waited for it (up to the 5 ms switch interval) behind the event
loop's request handling, so neither of the two cores was ever fully used. As a
process, the writer and the event loop each have a core and a GIL.

How it works (``SqliteStorage`` starts it through ``_sqlite_link.WriterLink``):

* Jobs arrive over a socket in frames (``Link``: a 4-byte length, then the frame); a
  frame is ``JOB_HEADER`` (job id, kind) then the pickled payload, which is read in
  place, inside the job's savepoint (a payload the writer cannot unpickle fails that
  job only; a 10 MB batch is not copied again). Kind ``STOP`` asks the writer to stop.
  ``kind`` is ``CALL`` (``payload(conn)`` is a picklable job: a module-level function,
  or a ``functools.partial`` of one), ``STAGE`` (``payload`` is what
  ``_sqlite_staging.stage_batch`` takes after the connection) or ``MERGE``.
* Group commit: the writer takes every job waiting (up to ``MAX_GROUP``) and commits
  them in one transaction, so one fsync serves many requests. Each job runs inside its
  own SAVEPOINT: a failing job is rolled back alone and the others still commit.
* After the commit (never before) it sends one reply for the whole group:
  ``(replies, events)``; a reply is ``(job_id, ok, value or exception)``, an event is
  what the store's observer is told (``COMMITTED`` with seconds, ``FAILED`` with the
  error). So no request is told its data is stored before COMMIT returned.
* Staged points are merged (see ``_sqlite_staging``) when ``merge_due`` says so (after
  the group's answers are sent), after ``MERGE_IDLE`` seconds without jobs, on a
  ``MERGE`` job, and before the writer exits.
* The writer exits when asked to, or when the server's end of the socket closes (the
  server stopped or was killed): jobs already received are committed first.

    python -m kpihub.storage._sqlite_writer FD PATH SYNCHRONOUS BUSY_TIMEOUT
"""

from __future__ import annotations

import contextlib
import pickle
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kpihub.errors import StoreUnavailable
from kpihub.storage import _sqlite_staging
from kpihub.storage._sqlite_driver import sqlite3

CALL, STAGE, MERGE, STOP = b"c", b"s", b"m", b"x"
JOB_HEADER = struct.Struct("!Qc")  # job id, kind
COMMITTED, FAILED, READY = "committed", "failed", "ready"
MAX_GROUP = 256

Job = tuple[int, bytes, bytes]  # job id, kind, the whole frame
Reply = tuple[int, bool, Any]
Event = tuple[str, Any]


def connect(path: Path, synchronous: str, busy_timeout: float = 10.0) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=256
    )
    # How long to wait for another process's write lock (a backup, a CLI command).
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted rows' bytes are zeroed (docs/operations.md), whichever library: Debian's
    # SQLite is built so, SQLite's own default (and so the wheel's) is off.
    conn.execute("PRAGMA secure_delete = ON")
    return conn


def _wal_round(wal: Path) -> bytes:
    """The WAL header's checkpoint sequence number, which every restart changes."""
    try:
        with wal.open("rb") as file:
            return file.read(16)[12:]
    except OSError:
        return b""


class GroupWriter:
    """Runs groups of jobs on the write connection; knows what it staged since a merge.

    ``staged.waiting`` only decides when to merge (a read merges whatever any process
    staged).
    """

    WAL_RESTART_AFTER = 1.0
    """Seconds without a WAL restart after which the writer checkpoints itself."""

    def __init__(self, conn: sqlite3.Connection, synchronous: str, path: Path) -> None:
        self.conn = conn
        self.synchronous = synchronous.upper()
        self.events: list[Event] = []
        self._wal = path.with_name(path.name + "-wal")
        self._wal_round = (_wal_round(self._wal), time.monotonic())
        # What a crash left staged is merged as soon as the writer is idle. Before the
        # schema exists (a store started to be migrated) there is nothing to merge.
        self.staged = _sqlite_staging.StagedIds()
        self.series = _sqlite_staging.SeriesIds()
        with contextlib.suppress(sqlite3.Error):
            if conn.execute(_sqlite_staging.HAS_STAGED_SQL).fetchone():
                self.staged.unknown()
        self._data_version = self._other_commits()

    def _other_commits(self) -> int:
        """Changes when another connection commits (``PRAGMA data_version``)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _notice_other_writers(self) -> None:
        """Inside a write transaction: whether another process staged rows is unknown
        once anyone else has committed (a second server, a CLI command)."""
        version = self._other_commits()
        if version != self._data_version:
            self._data_version = version
            self.staged.unknown()

    def _lost_track(self) -> None:
        """A rollback undid work of this writer's: what it knew may be wrong now."""
        self.staged.unknown()
        self.series.forget()

    def _failed(self, exc: BaseException) -> None:
        self.events.append((FAILED, exc))

    def _run(self, kind: bytes, frame: bytes) -> Any:
        # Read here, inside the job's savepoint: a job the writer cannot import (a
        # function of the server's ``__main__``, say) fails alone, like any job.
        with memoryview(frame) as view:
            payload = pickle.loads(view[JOB_HEADER.size :])  # noqa: S301 (our own server)
        if kind == STAGE:
            write, points, render = payload
            return _sqlite_staging.stage_batch(
                self.conn, write, points, render, self.staged, self.series
            )
        if kind == MERGE:
            return self.merge()
        job: Callable[[sqlite3.Connection], Any] = payload
        return job(self.conn)

    def merge(self) -> int:
        """Inside a transaction; whoever rolls it back calls ``_lost_track()``."""
        moved = _sqlite_staging.merge(self.conn)
        self.staged.emptied()
        return moved

    def merge_alone(self) -> None:
        """A merge in a transaction of its own; on failure the rows stay staged (and
        durable) and the next trigger tries again.

        Its COMMIT is not fsynced (``synchronous = NORMAL`` for this transaction): the
        merge only moves rows that are durable already. If a power loss takes it, it
        takes the whole merge (the staging table's DELETE with it), and the next start
        merges those rows again; the next fsynced commit (the WAL is appended in order)
        makes it durable anyway. It saves the fsync of a few megabytes of WAL, which in
        the server competes with the checkpointer's.
        """
        conn = self.conn
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            self._notice_other_writers()  # whatever they staged, the merge moves too
            self.merge()
            conn.execute("COMMIT")
            self._restart_wal_if_stuck()
        except sqlite3.Error as exc:
            self._failed(exc)
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._lost_track()
        finally:
            # Not suppressed: a writer that could not go back to fsyncing its commits
            # must stop (the server starts a new one) rather than acknowledge unsynced.
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")

    def _restart_wal_if_stuck(self) -> None:
        """Checkpoint on this connection when the WAL has not started over for
        ``WAL_RESTART_AFTER`` seconds.

        The server's checkpointer copies the WAL back and restarts it between two group
        commits (see ``sqlite._Checkpointer``), but a writer that always has the next
        group waiting leaves it no such moment, and then the WAL only grows. Between
        its own transactions the writer's PASSIVE checkpoint copies what is left and
        its next commit starts the WAL over. Not every time: the copy is the writer's
        time, which the checkpointer's thread spends on the other core.
        """
        now = time.monotonic()
        current = _wal_round(self._wal)
        if current != self._wal_round[0]:
            self._wal_round = (current, now)
        elif now - self._wal_round[1] >= self.WAL_RESTART_AFTER:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._wal_round = (current, now)

    def run_group(self, group: list[Job]) -> list[Reply]:
        """Run ``group`` in one transaction; a reply for every job, whatever happens."""
        try:
            return self._commit_group(group)
        except BaseException as exc:
            self._failed(exc)
            with contextlib.suppress(sqlite3.Error):
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            failure = StoreUnavailable(f"The database write failed: {exc}")
            self._lost_track()  # merge when idle, and before the next batch
            return [(job_id, False, failure) for job_id, _, _ in group]

    def _commit_group(self, group: list[Job]) -> list[Reply]:
        conn = self.conn
        began = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._failed(exc)
            failure = StoreUnavailable(f"The database cannot be written: {exc}")
            return [(job_id, False, failure) for job_id, _, _ in group]
        self._notice_other_writers()
        replies: list[Reply] = []
        for job_id, kind, frame in group:
            conn.execute("SAVEPOINT job")
            try:
                value = self._run(kind, frame)
            except Exception as exc:  # handed to the waiting request
                # SQLite ends the whole transaction on some errors (SQLITE_FULL,
                # IOERR, BUSY...); then there is no savepoint left, the group's
                # earlier work is gone, and ROLLBACK TO raises: run_group fails
                # every job of the group, none is told its data is stored.
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                self._lost_track()  # the job may have merged, or staged what it rolled back
                replies.append((job_id, False, exc))
            else:
                conn.execute("RELEASE job")
                replies.append((job_id, True, value))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = StoreUnavailable(f"The database commit failed: {exc}")
            self._lost_track()
            return [(job_id, False, failure) for job_id, _, _ in group]
        self.events.append((COMMITTED, time.perf_counter() - began))
        return replies


class Link:
    """The writer's end of the socket pair: length-prefixed frames, as the server's
    ``_sqlite_link`` writes and reads them. A frame is read into one ``bytes`` (not a
    bytearray: pickle needs half the memory to unpickle from bytes), so a 10 MB batch
    is in the writer's memory once before it is unpickled."""

    LENGTH = struct.Struct("!i")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def poll(self, timeout: float | None) -> bool:
        """Whether a frame (or the end of the stream) is waiting, within ``timeout`` s."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable)

    def recv(self) -> bytes:
        (size,) = self.LENGTH.unpack(self._exactly(self.LENGTH.size))
        return self._exactly(size)

    def _exactly(self, size: int) -> bytes:
        # MSG_WAITALL returns the whole frame at once, short of a signal or the end.
        data = self.sock.recv(size, socket.MSG_WAITALL)
        while 0 < len(data) < size:
            data += self.sock.recv(size - len(data), socket.MSG_WAITALL)
        if len(data) < size:
            raise EOFError("the server closed the socket")
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.LENGTH.pack(len(data)) + data)

    def close(self) -> None:
        self.sock.close()


def _picklable(value: Any) -> Any:
    """``value``, or for an exception that cannot cross the socket, one that can."""
    try:
        pickle.dumps(value)
    except Exception:
        if isinstance(value, BaseException):
            return StoreUnavailable(f"The database write failed: {value!r}")
        raise
    return value


def _send(link: Link, replies: list[Reply], events: list[Event]) -> None:
    try:
        message = pickle.dumps((replies, events), pickle.HIGHEST_PROTOCOL)
    except Exception:
        replies = [(job_id, ok, _picklable(value)) for job_id, ok, value in replies]
        events = [(kind, _picklable(value)) for kind, value in events]
        message = pickle.dumps((replies, events), pickle.HIGHEST_PROTOCOL)
    link.send(message)


def serve(link: Link, path: Path, synchronous: str, busy_timeout: float) -> None:
    """The writer's loop, until asked to stop or the server's end of ``link`` closes."""
    try:
        conn = connect(path, synchronous, busy_timeout)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the server's checkpointer does it
        # KiB. More (64 MiB was tried) did not speed up ingestion, even at a million
        # points (the OS caches the file too), and a 10 MB batch would fill it.
        conn.execute("PRAGMA cache_size = -16384")
        # Statement journals (each staging INSERT inside its job's savepoint has one)
        # in memory: in temporary files they were a third of the writer's bytes written.
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.Error as exc:
        link.send(pickle.dumps((READY, StoreUnavailable(f"{path}: {exc}"))))
        return
    writer = GroupWriter(conn, synchronous, path)
    link.send(pickle.dumps((READY, None)))
    stopping = False
    while not stopping:
        try:
            if not link.poll(_sqlite_staging.MERGE_IDLE if writer.staged.waiting else None):
                writer.merge_alone()
                if writer.events:
                    _send(link, [], writer.events)
                    writer.events = []
                continue
            group: list[Job] = []
            while len(group) < MAX_GROUP and (not group or link.poll(0)):
                frame = link.recv()
                job_id, kind = JOB_HEADER.unpack_from(frame)
                if kind == STOP:
                    stopping = True
                    break
                group.append((job_id, kind, frame))
        except (EOFError, OSError):
            break  # the server is gone: nobody is waiting for an answer
        if group:
            before = writer.staged.waiting
            replies = writer.run_group(group)
            events, writer.events = writer.events, []
            try:
                _send(link, replies, events)
            except OSError:
                break
            # After the answers, not before: the group's requests need not wait for it.
            waiting = writer.staged.waiting
            if _sqlite_staging.merge_due(waiting, max(0, waiting - before)):
                writer.merge_alone()
    # A clean stop leaves nothing staged (a crash's leftovers merge on the next start).
    writer.merge_alone()
    conn.close()


def main(argv: list[str]) -> None:
    # Ctrl-C, and a service manager's SIGTERM, reach the whole process group. The server
    # stops gracefully (requests in flight still get their answers), then stops the
    # writer, which also exits when the server is gone: the signal is not for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd, path, synchronous, busy_timeout = argv
    link = Link(socket.socket(fileno=int(fd)))
    try:
        serve(link, Path(path), synchronous, float(busy_timeout))
    finally:
        with contextlib.suppress(OSError):
            link.close()


if __name__ == "__main__":
    main(sys.argv[1:])
