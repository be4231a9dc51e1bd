"""A PostgreSQL server of the test's own, which it may stop, start and freeze at will.

The shared server (``KPIHUB_TEST_POSTGRES_URL``) is used by everyone at once and must
never be stopped; a test that takes the store away starts a throwaway cluster instead:
``initdb`` into a temporary directory as the ``postgres`` OS user, ``pg_ctl start`` on a
free port with trust authentication, and everything deleted at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest

START_TIMEOUT = 30
"""Seconds ``pg_ctl`` waits for the server to start or stop."""


def _bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail("initdb is not installed; the store-outage tests need PostgreSQL's server")
    return Path(initdb).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivatePostgres:
    """One cluster in a temporary directory; ``url`` names its ``postgres`` database.

    Run as root (CI), the server runs as the ``postgres`` OS user, as PostgreSQL insists.
    """

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="kpihub-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}\n"
                f"{self.server_log()}"
            )

    def init(self) -> None:
        if self._user is not None:
            shutil.chown(self.directory, self._user)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "-N"
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.directory} "
            # A crash of PostgreSQL (``stop("immediate")``) must lose no commit, so commits
            # wait for their WAL write (synchronous_commit stays on); a power loss is not
            # tested, so the WAL need not reach the disk (fsync off).
            "-c fsync=off -c full_page_writes=off"
        )
        wait = ("-w", "-t", str(START_TIMEOUT))
        log = ("-l", str(self.log))
        self._run("pg_ctl", "start", "-D", str(self.data), *log, *wait, "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session and stops; ``immediate`` is a crash of PostgreSQL."""
        wait = ("-w", "-t", str(START_TIMEOUT))
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, *wait)

    def _pids(self) -> list[int]:
        """The postmaster and every backend it forked (each in a session of its own)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError):
                # "pid (comm) state ppid ...": comm may hold spaces, so split after it.
                if int(stat.read_text().rpartition(")")[2].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP): it neither answers nor refuses.

        That is an unreachable store (a dropped network, a hung machine): connections
        open at the TCP level and then hear nothing, so only timeouts end the wait.
        """
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        for pid in self._pids():
            with suppress(ProcessLookupError):  # a backend that just ended
                os.kill(pid, sig)

    def ensure_running(self) -> None:
        """Running and answering again, whatever an earlier test left it as."""
        if (self.data / "postmaster.pid").exists():
            self.thaw()
        else:
            self.start()

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return "(no server log)"

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with suppress(Exception):
                self.thaw()
            with suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started cluster of this test's own, destroyed afterwards however the test ends."""
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
