"""The real ``kpihub`` command, run as a subprocess in a private directory.

``Kpihub`` runs CLI commands; ``ServerProcess`` runs ``kpihub serve`` on a free port,
waits for ``/healthz`` and stops it with SIGTERM (graceful) or SIGKILL (a crash).
Each instance owns one temporary directory holding the server key, the server logs
and, on SQLite, the database file (on PostgreSQL it is given a database of its own),
so tests never share state unless they share the instance.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kpihub.storage.urls import scheme, sqlite_path
from tests import databases

CLI_TIMEOUT = 30.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def kpihub_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m kpihub``."""
    script = Path(sys.executable).with_name("kpihub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kpihub"]


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Return once ``condition()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"kpihub {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


class Kpihub:
    """The ``kpihub`` command bound to one database and one directory's server key.

    ``database_url`` defaults to the SQLite file ``DIRECTORY/k.db``.
    """

    def __init__(self, directory: Path, database_url: str | None = None, **settings: str) -> None:
        self.directory = directory
        self.database_url = database_url or f"sqlite:///{directory / 'k.db'}"
        # The SQLite file, or None on PostgreSQL.
        self.database = (
            sqlite_path(self.database_url) if scheme(self.database_url) == "sqlite" else None
        )
        self.key_file = directory / "key"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPIHUB_")}
        env.update(
            {
                "KPIHUB_DATABASE_URL": self.database_url,
                "KPIHUB_SECRET_KEY_FILE": str(self.key_file),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"KPIHUB_{k.upper()}": v for k, v in settings.items()})
        self.env = env

    def run(
        self,
        *args: str,
        ok: bool | None = True,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> Result:
        """Run ``kpihub ARGS``; ``ok`` True/False asserts success/failure, None checks nothing."""
        proc = subprocess.run(
            [*kpihub_command(), *args],
            env={**self.env, **(env or {})},
            cwd=self.directory,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        result = Result(args, proc.returncode, proc.stdout, proc.stderr)
        if ok is True:
            assert result.returncode == 0, str(result)
        elif ok is False:
            assert result.returncode != 0, str(result)
            assert "Traceback" not in result.stderr, str(result)
        return result

    def json(self, *args: str) -> Any:
        return self.run(*args, "--json").json()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (``?`` placeholders) on this command's database."""
        return databases.rows(self.database_url, sql, *params)

    def server(self, port: int | None = None, *args: str, name: str = "server") -> ServerProcess:
        """A server (not started) on ``port`` (default: a free one); ``args`` go to serve."""
        return ServerProcess(self, port or free_port(), *args, name=name)


class ServerProcess:
    """``kpihub serve --port PORT``; may be stopped and started again on the same port."""

    def __init__(self, cli: Kpihub, port: int, *args: str, name: str = "server") -> None:
        self.cli = cli
        self.port = port
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = cli.directory / f"{name}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self, tenant: str, timeout: float = 10.0) -> httpx.Client:
        """A client for ``http://TENANT.localhost:PORT``.

        ``*.localhost`` is not resolvable everywhere (glibc without nss-myhostname), so
        connect to 127.0.0.1 and name the tenant in the Host header, as a proxy would.
        """
        return httpx.Client(
            base_url=self.base_url,
            headers={"Host": f"{tenant}.localhost:{self.port}"},
            timeout=timeout,
        )

    def start(self) -> ServerProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n=== start {self.starts} ===\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(
                [
                    *kpihub_command(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.cli.env,
                cwd=self.cli.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: signals reach every worker it forks, and no
                # worker outlives the test as an orphan.
                start_new_session=True,
            )
        finally:
            log.close()  # the child holds its own descriptor
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=1.0) as probe:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"kpihub serve exited with {self.proc.returncode}:\n{self.log()}"
                    )
                try:
                    if probe.get(f"{self.base_url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"kpihub serve not healthy after {START_TIMEOUT}s:\n{self.log()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit; SIGKILL if a graceful stop hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc is not None else 0
        os.killpg(proc.pid, sig)
        try:
            return proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
            raise RuntimeError(
                f"kpihub serve ignored {sig.name} for {STOP_TIMEOUT}s:\n{self.log()}"
            ) from None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # any worker left behind

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> int:
        code = self.stop(sig)
        self.start()
        return code

    def log(self, tail: int | None = 4000) -> str:
        """The end of the server's output (all of it with ``tail=None``)."""
        try:
            text = self.log_path.read_text(errors="replace")
            return text if tail is None else text[-tail:]
        except FileNotFoundError:
            return "(no log)"


@contextmanager
def running_server(cli: Kpihub) -> Iterator[ServerProcess]:
    """A started server, always killed at the end, however the test ends."""
    server = cli.server()
    try:
        yield server.start()
    finally:
        server.kill()


@dataclass(frozen=True)
class Creds:
    client_id: str
    client_secret: str


def new_client(cli: Kpihub, tenant: str, *options: str, env: str = "testing") -> Creds:
    """A client made with ``kpihub client create``; ``options`` are extra CLI flags."""
    made = cli.json("client", "create", "--tenant", tenant, "--env", env, "--name", "pos", *options)
    return Creds(made["client_id"], made["client_secret"])


def token_response(http: httpx.Client, creds: Creds) -> httpx.Response:
    """The answer of ``/oauth/token`` of the server ``http`` talks to, for ``creds``."""
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
    )


def get_token(http: httpx.Client, creds: Creds) -> str:
    """An access token from ``/oauth/token`` of the server ``http`` talks to."""
    response = token_response(http, creds)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
