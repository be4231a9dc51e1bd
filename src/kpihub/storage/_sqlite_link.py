"""The server's side of the SQLite writer process (``_sqlite_writer``).

``WriterLink.start`` runs ``python -m kpihub.storage._sqlite_writer`` with one end of a
socket pair; ``submit`` sends a job and returns an asyncio future resolved when the
writer's reply for the job's group arrives (after its COMMIT). Everything happens on
the event loop: no thread of the server touches the socket, so the server's GIL is
only the event loop's.

If the writer process dies, every job waiting fails with ``StoreUnavailable`` (503)
and the next ``submit`` starts a new writer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import socket
import sys
from pathlib import Path
from typing import Any

from kpihub.errors import StoreUnavailable
from kpihub.storage import _sqlite_writer
from kpihub.storage.base import StoreObserver

BACKEND = "sqlite"
log = logging.getLogger("kpihub.storage")


class WriterStopped(Exception):
    """What the store's observer is told when the writer process dies (the metrics count
    it as ``kpihub_store_errors_total{error="WriterStopped"}``)."""


_HEADER = _sqlite_writer.Link.LENGTH
START_TIMEOUT = 60.0  # seconds for a new writer to open the database and say so
STOP_TIMEOUT = 60.0  # seconds for a stopping writer to commit, merge and exit


class _Protocol(asyncio.Protocol):
    def __init__(self, on_message: Any, on_lost: Any) -> None:
        self._buffer = bytearray()
        self._on_message = on_message
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            # The peer is our own writer process, on a socket pair nobody else holds.
            with memoryview(buffer) as view:
                message = pickle.loads(view[start + _HEADER.size : end])  # noqa: S301
            self._on_message(message)
            start = end
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class WriterLink:
    def __init__(
        self, path: Path, synchronous: str, busy_timeout: float, observer: StoreObserver
    ) -> None:
        self._args = (str(path), synchronous, str(busy_timeout))
        self._observer = observer
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._transport: asyncio.Transport | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[Any] | None = None
        self._starting = asyncio.Lock()
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The writer process's id, while there is one."""
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def start(self) -> None:
        async with self._starting:
            if not self.alive:
                await self._spawn()

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = False
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The writer imports jobs by module name, as the server found them.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", _sqlite_writer.__name__, str(theirs.fileno())),
                *self._args,
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._ready = loop.create_future()
        self._transport, _ = await loop.create_unix_connection(
            lambda: _Protocol(self._on_message, self._on_lost), sock=ours
        )
        try:
            error = await asyncio.wait_for(self._ready, START_TIMEOUT)
        except TimeoutError:
            error = StoreUnavailable(
                f"The SQLite writer process did not start within {START_TIMEOUT:g} s."
            )
        if error is not None:
            await self.stop()
            raise error

    def submit(self, kind: bytes, payload: Any) -> asyncio.Future[Any]:
        """Send one job; its future holds the job's value, or raises its exception."""
        if not self.alive:
            raise StoreUnavailable("The SQLite writer process is not running.")
        assert self._transport is not None
        job_id = next(self._ids)
        blob = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = fut
        self._write_frame(_sqlite_writer.JOB_HEADER.pack(job_id, kind), blob)
        return fut

    def _write_frame(self, header: bytes, blob: bytes = b"") -> None:
        assert self._transport is not None
        # One call, so one send (uvloop writes a list with one writev): two writes made
        # two sends, and the writer woke for the length, then again for the rest.
        self._transport.writelines((_HEADER.pack(len(header) + len(blob)) + header, blob))

    def _on_message(self, message: Any) -> None:
        if message[0] == _sqlite_writer.READY:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message[1])
            return
        replies, events = message
        for kind, value in events:
            if kind == _sqlite_writer.COMMITTED:
                self._observer.store_committed(BACKEND, value)
            else:
                self._observer.store_failed(BACKEND, value)
        for job_id, ok, value in replies:
            fut = self._pending.pop(job_id)
            if fut.done():  # its request was cancelled
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _on_lost(self) -> None:
        self._transport = None
        failure = StoreUnavailable(
            "The SQLite writer process stopped; this request's data is not stored. Retry: "
            "a new writer starts with the next write."
        )
        if not self._stopping:
            # Not asked to stop: killed (OOM?) or crashed (its traceback is on stderr).
            pid = self._process.pid if self._process is not None else None
            log.error(
                "The SQLite writer process %s stopped unexpectedly; %d request(s) get 503. "
                "A new writer starts with the next write.",
                pid,
                len(self._pending),
            )
            self._observer.store_failed(BACKEND, WriterStopped(f"writer process {pid}"))
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(failure)
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(failure)

    async def stop(self) -> None:
        """Let the writer commit what it has, merge and exit; wait for it."""
        self._stopping = True
        transport, process = self._transport, self._process
        if transport is not None and not transport.is_closing():
            self._write_frame(_sqlite_writer.JOB_HEADER.pack(0, _sqlite_writer.STOP))
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:  # a writer that hangs: what it held is not acknowledged
                process.kill()
                await process.wait()
            self._process = None
        if transport is not None:
            transport.close()
