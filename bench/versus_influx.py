"""Ingestion side by side: kpihub (default settings) against InfluxDB 1.6, in one run.

    python -m bench.versus_influx [--seconds 8] [--runs 3] [--concurrency 8] \
        [--batches 100,1000] [--no-normal]

Both systems get exactly the same points (``bench.points``: one seeded stream, a fresh
slice per run, every element new), from the same asyncio load generator
(``bench.common.load``: ``--concurrency`` keep-alive HTTP/1.1 connections), on the
same machine:

- kpihub: one ``kpihub serve`` on a fresh SQLite file with **default settings**
  (``synchronous=full``: every acknowledged batch is fsynced), article-shaped JSON
  batches, an element counted only when its request got a 200 (sent after commit);
- InfluxDB: ``influxd`` (Debian's ``influxdb`` package) with its default settings
  (``wal-fsync-delay = 0s``: the WAL is fsynced before a write is answered) in a
  temporary directory, line protocol with one point per element, ``POST /write``,
  a point counted when its request got a 204;
- for information, kpihub with ``KPIHUB_SQLITE_SYNCHRONOUS=normal`` (no fsync per
  commit; survives a process crash, not a power loss); ``--no-normal`` skips it.

Per batch size, a short warm-up of every system, then ``--runs`` measured runs each,
the systems alternating in order. Prints every run, the medians, and the ratio
kpihub / InfluxDB; exits non-zero when a target is missed. Targets: >= 1.0 for
100-element batches, >= 0.8 for 1,000-element batches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    LoadResult,
    Tenant,
    free_port,
    kpi_request,
    kpihub_env,
    load,
    median,
    serve,
    setup_tenant,
    token,
    wait_until_up,
)
from bench.points import Point, generate, kpihub_body, line_protocol

TARGETS = {100: 1.0, 1000: 0.8}
INFLUXD = "influxd"
INFLUX_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""
"""Only paths, ports and InfluxDB's own bookkeeping (its request log and internal
statistics database) differ from the package's defaults."""


@dataclass
class System:
    name: str
    port: int
    ok_status: int
    render: Callable[[bytes], bytes]  # a body -> the whole HTTP request
    body: Callable[[list[Point]], bytes]


@contextlib.contextmanager
def influxd(workdir: Path) -> Iterator[int]:
    """A private ``influxd`` with database ``bench``; its port."""
    if shutil.which(INFLUXD) is None:
        raise SystemExit("influxd not found: apt-get install influxdb (InfluxDB 1.6)")
    port = free_port()
    root = workdir / "influxdb"
    root.mkdir()
    config = root / "influxdb.conf"
    config.write_text(INFLUX_CONFIG.format(root=root, port=port, rpc_port=free_port()))
    with (root / "influxd.log").open("wb") as log:
        process = subprocess.Popen(
            [INFLUXD, "-config", str(config)], stdout=log, stderr=log, start_new_session=True
        )
    try:
        if not wait_until_up(f"http://127.0.0.1:{port}/ping", process, 30):
            raise SystemExit(f"influxd did not start; see {root / 'influxd.log'}")
        query = urllib.parse.urlencode({"q": "CREATE DATABASE bench"}).encode()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/query", data=query, timeout=10).close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def influx_request(body: bytes) -> bytes:
    head = (
        "POST /write?db=bench&precision=s HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def stored_in_influx(port: int) -> int:
    query = urllib.parse.urlencode({"db": "bench", "q": "SELECT count(id) FROM kpi"}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/query", data=query, timeout=60) as r:
        series = json.load(r)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def kpihub_system(name: str, port: int, tenant: Tenant) -> System:
    access = token(port, tenant)
    return System(
        name=name,
        port=port,
        ok_status=200,
        render=lambda body: kpi_request(tenant, access, body),
        body=kpihub_body,
    )


def run_one(
    system: System, requests: list[bytes], size: int, concurrency: int, seconds: float
) -> LoadResult:
    result = asyncio.run(
        load(
            [system.port],
            requests,
            size,
            concurrency,
            seconds,
            ok_status=system.ok_status,
            cycle=False,
        )
    )
    if result.errors:
        raise SystemExit(f"{system.name}: {result.errors} of {result.requests} requests failed")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batches", default="100,1000", help="batch sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--capacity",
        type=int,
        default=150_000,
        help="points prepared per second of a run (a run ends early if they run out)",
    )
    parser.add_argument("--no-normal", action="store_true", help="skip synchronous=normal")
    args = parser.parse_args()
    sizes = [int(s) for s in args.batches.split(",")]

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kpihub-vs-")))
        systems: list[System] = []
        full_env = kpihub_env(tmp / "full")
        (tmp / "full").mkdir()
        tenant = setup_tenant(full_env)
        full = stack.enter_context(serve(full_env))
        systems.append(kpihub_system("kpihub", full.port, tenant))
        if not args.no_normal:
            (tmp / "normal").mkdir()
            normal_env = kpihub_env(tmp / "normal", sqlite_synchronous="normal")
            normal_tenant = setup_tenant(normal_env)
            normal = stack.enter_context(serve(normal_env))
            systems.append(kpihub_system("kpihub-normal", normal.port, normal_tenant))
        influx_port = stack.enter_context(influxd(tmp))
        systems.append(System("influxdb", influx_port, 204, influx_request, line_protocol))
        print(
            f"Ingestion, kpihub (SQLite, defaults) vs InfluxDB 1.6 (defaults): "
            f"{args.concurrency} connections, {args.runs} runs of {args.seconds:g} s per "
            f"system and batch size, after a warm-up; same points for every system"
        )
        next_point = 0
        failed = False
        summary = []
        for size in sizes:
            rates: dict[str, list[float]] = {s.name: [] for s in systems}
            p99: dict[str, list[float]] = {s.name: [] for s in systems}
            for run in range(args.runs + 1):  # run 0 warms up
                seconds = args.seconds if run else 2.0
                count = int(seconds * args.capacity) // size + 1
                points = generate(args.seed, next_point, count * size)
                next_point += count * size
                chunks = [points[i : i + size] for i in range(0, len(points), size)]
                order = systems if run % 2 else systems[::-1]
                for system in order:
                    requests = [system.render(system.body(c)) for c in chunks]
                    result = run_one(system, requests, size, args.concurrency, seconds)
                    if run == 0:
                        continue
                    rates[system.name].append(result.elements_per_s)
                    p99[system.name].append(result.percentile(0.99))
                    print(
                        f"  batch {size:>5} run {run} {system.name:<14} "
                        f"{result.elements_per_s:>10,.0f} elements/s  "
                        f"p50 {result.percentile(0.5):6.1f} ms  "
                        f"p99 {result.percentile(0.99):6.1f} ms"
                    )
            ratio = median(rates["kpihub"]) / median(rates["influxdb"])
            ok = ratio >= TARGETS.get(size, 0.0)
            failed |= not ok
            for system in systems:
                summary.append(
                    f"batch {size:>5}  {system.name:<14} "
                    f"median {median(rates[system.name]):>10,.0f} elements/s  "
                    f"p99 {median(p99[system.name]):6.1f} ms"
                )
            summary.append(
                f"batch {size:>5}  ratio kpihub / influxdb = {ratio:.2f} "
                f"(target >= {TARGETS.get(size, 0.0):g}: {'ok' if ok else 'MISSED'})"
            )
        print()
        for line in summary:
            print(line)
        print(f"InfluxDB holds {stored_in_influx(influx_port):,} points after the runs")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
