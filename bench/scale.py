"""Ingestion scale curve: throughput and p99 for 1, 8, 32, 128 clients, 1 and 2 workers.

    python -m bench.scale [--seconds 5] [--clients 1,8,32,128] [--workers 1,2] \
        [--batch 100] [--plot docs/ingest-scale.png]

For each worker count, a fresh ``kpihub serve --workers N`` on a fresh SQLite file
(otherwise default settings: every commit fsynced), then for each client count a short
warm-up and one measured run of ``--seconds`` with that many keep-alive connections
sending new 100-element batches (``bench.points``). Prints elements/s acknowledged,
p50/p99 latency, and the peak RSS of the server's processes (sum of ``VmHWM`` over
the process group: the supervisor and its workers). Writes a PNG plot (matplotlib)
of throughput and p99 against clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    LoadResult,
    Server,
    kpi_request,
    kpihub_env,
    load,
    serve,
    setup_tenant,
    token,
)
from bench.points import generate, kpihub_body


@dataclass
class Row:
    workers: int
    clients: int
    elements_per_s: float
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float


def group_peak_rss_mb(server: Server) -> float:
    """Sum of the peak RSS of every process in the server's process group."""
    total_kib = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != server.pid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kib += int(line.split()[1])
        except (OSError, ProcessLookupError):
            continue
    return total_kib / 1024


def curve(workers: int, clients: list[int], args: argparse.Namespace, start: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="kpihub-scale-") as tmp:
        env = kpihub_env(Path(tmp))
        tenant = setup_tenant(env)
        with serve(env, "--workers", str(workers)) as server:
            access = token(server.port, tenant)

            def run(n: int, seconds: float) -> LoadResult:
                nonlocal start
                count = int(seconds * args.capacity) // args.batch + n
                points = generate(args.seed, start, count * args.batch)
                start += count * args.batch
                requests = [
                    kpi_request(tenant, access, kpihub_body(points[i : i + args.batch]))
                    for i in range(0, len(points), args.batch)
                ]
                result = asyncio.run(
                    load([server.port], requests, args.batch, n, seconds, cycle=False)
                )
                if result.errors:
                    raise SystemExit(f"{workers} workers, {n} clients: {result.errors} errors")
                return result

            for n in clients:
                run(n, 1.0)  # warm-up: connections, caches
                result = run(n, args.seconds)
                row = Row(
                    workers,
                    n,
                    result.elements_per_s,
                    result.percentile(0.5),
                    result.percentile(0.99),
                    group_peak_rss_mb(server),
                )
                rows.append(row)
                print(
                    f"  workers {workers}  clients {n:>4}  {row.elements_per_s:>9,.0f} el/s  "
                    f"p50 {row.p50_ms:7.1f} ms  p99 {row.p99_ms:7.1f} ms  "
                    f"peak RSS {row.peak_rss_mb:6.0f} MB"
                )
    return rows


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for workers in sorted({r.workers for r in rows}):
        mine = [r for r in rows if r.workers == workers]
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        left.plot([r.clients for r in mine], [r.elements_per_s for r in mine], "o-", label=label)
        right.plot([r.clients for r in mine], [r.p99_ms for r in mine], "o-", label=label)
    for ax, title, unit in (
        (left, "Acknowledged elements/s", "elements/s"),
        (right, "p99 request latency", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients (100-element batches)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    right.set_yscale("log")
    fig.suptitle("kpihub serve on SQLite, fsync per commit (2-core machine)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--capacity", type=int, default=120_000, help="points per second")
    parser.add_argument("--plot", type=Path, default=Path("docs/ingest-scale.png"))
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    print(f"Scale curve: {args.batch}-element batches, {args.seconds:g} s per point")
    rows: list[Row] = []
    for i, workers in enumerate(int(w) for w in args.workers.split(",")):
        rows += curve(workers, clients, args, start=i * 10**9)
    plot(rows, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
