"""Helpers for tests of ``kpihub push`` and the SDK against a real server process."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.functional import server
from tests.functional.server import Creds, Kpihub, ServerProcess, kpihub_command

TENANT = "acme"
INTEGRATION = "acme-pos"


def setup_tenant(cli: Kpihub) -> None:
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)


def push_cli(directory: Path) -> Kpihub:
    """A SQLite ``kpihub`` in ``directory`` with TENANT and INTEGRATION, 600 requests/min."""
    cli = Kpihub(directory, rate_limit="600", sqlite_synchronous="normal")
    setup_tenant(cli)
    return cli


def new_client(cli: Kpihub, *args: str) -> Creds:
    return server.new_client(cli, TENANT, *args)


def url(server: ServerProcess, tenant: str = TENANT) -> str:
    """The tenant's URL; the client connects to 127.0.0.1 for ``*.localhost`` (RFC 6761)."""
    return f"http://{tenant}.localhost:{server.port}"


def connection(server: ServerProcess, creds: Creds) -> list[str]:
    return [
        "--url",
        url(server),
        "--client-id",
        creds.client_id,
        "--client-secret",
        creds.client_secret,
    ]


def write_csv(path: Path, n: int, *, bad_line: int | None = None, start: int = 0) -> Path:
    """``n`` elements for 100 users; ``bad_line`` (a file line number) gets the value '1,5'."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "user_id",
                "location_id",
                "id",
                "kpi",
                "value",
                "units",
                "timestamp",
                "date_from",
                "date_to",
            ]
        )
        for i in range(start, start + n):
            value = "1,5" if bad_line is not None and i - start + 2 == bad_line else f"{i}.25"
            user = i // 2000
            out.writerow([user, user % 7, i, "sales", value, "Eur", 1568120963 + i, "", ""])
    return path


def push_command(cli: Kpihub, *args: str) -> list[str]:
    del cli
    return [*kpihub_command(), "push", *args]


def run(cli: Kpihub, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kpihub_command(), *args],
        env=cli.env,
        cwd=cli.directory,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


def stored(cli: Kpihub, context: str) -> tuple[int, int, float]:
    """(data points, sum of ``created`` over accepted batches, sum of values) for a context."""
    [(points, total)] = cli.rows(
        "SELECT COUNT(*), COALESCE(SUM(value), 0) FROM data_points WHERE context = ?", context
    )
    [(created,)] = cli.rows(
        "SELECT COALESCE(SUM(created), 0) FROM batches WHERE context = ? AND http_status = 200",
        context,
    )
    return int(points), int(created), float(total)


def accepted_batches(cli: Kpihub, context: str) -> int:
    [(n,)] = cli.rows(
        "SELECT COUNT(*) FROM batches WHERE context = ? AND http_status = 200", context
    )
    return int(n)


def expected_sum(n: int, start: int = 0) -> float:
    return sum(i + 0.25 for i in range(start, start + n))


def served_429s(server: ServerProcess) -> float:
    """429 answers the server counted (Prometheus), on every route."""
    with server.http(TENANT) as http:
        text = http.get("/metrics").text
    pattern = re.compile(r'^kpihub_http_requests_total\{[^}]*status="429"[^}]*\} (\S+)$', re.M)
    return sum(float(m) for m in pattern.findall(text))
