"""Shared by the bench scripts: a real ``kpihub serve`` process and a lean HTTP/1.1 client.

The load generator is a few lines of asyncio over raw sockets on purpose: on a
2-core machine a heavier client would take CPU from the server it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

KPIHUB = [sys.executable, "-m", "kpihub"]


def empty_ack(counts: object) -> bytes:
    """A store's ACK render for benches that call the store directly (importable by name,
    as SQLite's writer process needs: not defined in a script's ``__main__``)."""
    return b"{}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kpihub_env(workdir: Path, database_url: str | None = None, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPIHUB_")}
    env["KPIHUB_DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'kpihub.db'}"
    env["KPIHUB_SECRET_KEY_FILE"] = str(workdir / "secret.key")
    env["KPIHUB_LOG_LEVEL"] = "warning"
    env.update({f"KPIHUB_{k.upper()}": v for k, v in settings.items()})
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*KPIHUB, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


@dataclass
class Tenant:
    name: str
    integration: str
    client_id: str
    client_secret: str


def setup_tenant(env: dict[str, str], name: str = "bench") -> Tenant:
    cli(env, "tenant", "create", name)
    cli(env, "integration", "create", "--tenant", name, f"{name}-pos")
    return add_client(env, Tenant(name, f"{name}-pos", "", ""))


def add_client(
    env: dict[str, str], tenant: Tenant, rate_limit: int = 100_000_000, name: str = "bench"
) -> Tenant:
    """A new production client of ``tenant`` (same tenant and integration, new credentials)."""
    created = json.loads(
        cli(
            env,
            "client",
            "create",
            "--tenant",
            tenant.name,
            "--env",
            "production",
            "--name",
            name,
            "--rate-limit",
            str(rate_limit),
            "--json",
        )
    )
    return Tenant(tenant.name, tenant.integration, created["client_id"], created["client_secret"])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self, field_name: str = "VmRSS", pid: int | None = None) -> int:
        """``field_name`` of /proc/PID/status (the server's by default), in KiB."""
        for line in Path(f"/proc/{pid or self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"{field_name} not found")

    def writer_pid(self) -> int | None:
        """The server's SQLite writer process (None on PostgreSQL)."""
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                if b"_sqlite_writer" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return int(child)
        return None

    def cpu_seconds(self) -> float:
        return sum(cpu_times(self.pid))


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds process ``pid`` used so far, as the kernel counts them."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether ``url`` answered within ``seconds`` (False as soon as ``process`` exits)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                return False
            time.sleep(0.1)


@contextlib.contextmanager
def serve(env: dict[str, str], *extra: str, log: Path | None = None) -> Iterator[Server]:
    """A started ``kpihub serve``; its output goes to ``log`` when given (else inherited)."""
    port = free_port()
    output = log.open("ab") if log is not None else None
    process = subprocess.Popen(
        [*KPIHUB, "serve", "--port", str(port), *extra],
        env=env,
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    if output is not None:
        output.close()  # the server holds its own descriptor
    try:
        if not wait_until_up(f"http://127.0.0.1:{port}/healthz", process, 20):
            raise RuntimeError("kpihub serve did not start")
        yield Server(port, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the whole group: workers too
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def serve_many(env: dict[str, str], nodes: int, *extra: str) -> Iterator[list[Server]]:
    """``nodes`` server processes on the same store (and Redis, when configured)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(serve(env, *extra)) for _ in range(nodes)]


def postgres_url(admin_url: str, name: str) -> str:
    """The URL of database ``name`` on the server ``admin_url`` points to."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one bench run, dropped afterwards."""
    import uuid

    import psycopg

    name = f"kpihub_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def token(port: int, tenant: Tenant, scope: str | None = None) -> str:
    """An access token from the server on ``port`` for ``tenant``'s client."""
    fields = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
    }
    if scope is not None:
        fields["scope"] = scope
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/oauth/token",
        data=body,
        headers={
            "Host": f"{tenant.name}.localhost",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        value: str = json.load(response)["access_token"]
        return value


def token_request(
    tenant: Tenant, *, headers: dict[str, str] | None = None, article: bool = False
) -> bytes:
    """A client-credentials token request for ``tenant``'s client, as raw HTTP/1.1.

    ``article=True`` spells it as the integration article does (``grant-type``,
    ``application/x-www-urlencoded``), which kpihub accepts as well.
    """
    grant, kind = (
        ("grant-type", "application/x-www-urlencoded")
        if article
        else ("grant_type", "application/x-www-form-urlencoded")
    )
    fields = {grant: "client_credentials", "client_id": tenant.client_id}
    fields["client_secret"] = tenant.client_secret
    body = urllib.parse.urlencode(fields).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        "POST /oauth/token HTTP/1.1\r\n"
        f"Host: {tenant.name}.localhost\r\n"
        f"{extra}Content-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def kpi_request(tenant: Tenant, access_token: str, body: bytes, *, gzip: bool = False) -> bytes:
    head = (
        "POST /api/external/v1/kpi HTTP/1.1\r\n"
        f"Host: {tenant.name}.localhost\r\n"
        f"Authorization: Bearer {access_token}\r\n"
        "Accept: application/json\r\n"
        "Content-Type: application/json\r\n"
        + ("Content-Encoding: gzip\r\n" if gzip else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    return status, body


@dataclass
class LoadResult:
    seconds: float
    acked_elements: int = 0
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def elements_per_s(self) -> float:
        return self.acked_elements / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(
    ports: list[int],
    requests: list[bytes],
    elements_per_request: int,
    concurrency: int,
    seconds: float,
    *,
    ok_status: int = 200,
    cycle: bool = True,
) -> LoadResult:
    """``concurrency`` keep-alive connections sending ``requests`` round-robin for ``seconds``.

    Connection i goes to ``ports[i % len(ports)]``, so several nodes share the load.
    With ``cycle=False`` each request is sent once: the run ends early when they run out.
    """
    result = LoadResult(seconds)
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**12))

    async def worker(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                n = next(counter)
                if not cycle and n >= len(requests):
                    break
                request = requests[n % len(requests)]
                started = time.perf_counter()
                status, _ = await exchange(reader, writer, request)
                result.latencies.append(time.perf_counter() - started)
                result.requests += 1
                if status == ok_status:
                    result.acked_elements += elements_per_request
                else:
                    result.errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(ports[i % len(ports)]) for i in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def median(values: list[float]) -> float:
    return statistics.median(values)
