"""Where an ingested element's time goes: py-spy on a loaded ``kpihub serve``.

    python -m bench.profile_ingest [--seconds 10] [--concurrency 8] [--batch 100] \
        [--rate 200] [--raw profile.txt]

Starts a server with default settings (SQLite, fsync per commit), loads it with new
``--batch``-element batches from ``--concurrency`` connections, and samples every
thread of the server and of its SQLite writer process with py-spy (``--subprocesses``;
``--rate`` samples/s, idle threads not counted) for ``--seconds`` while the load runs.
Each sample is put in one category by the innermost frame that names one (see
``CATEGORIES``) and counted for its process; the table gives, per acknowledged
element, the CPU microseconds each category took:

    sample share x seconds / elements acknowledged in those seconds

Then, per process, the CPU time the kernel counted over the same load (user and
system), which also shows what the samples cannot split: time in the kernel.

Needs py-spy (``pip install -e '.[bench]'``); run as root or with ptrace allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import cpu_times, kpi_request, kpihub_env, load, serve, setup_tenant, token
from bench.points import generate, kpihub_body

# (category, substrings of a frame): the innermost frame of a sample that contains one
# of them decides; order matters only when several match the same frame.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("time parsing", ("ingest/times.py",)),
    ("number parsing", ("objecttypes/",)),
    ("validation", ("ingest/validate.py",)),
    ("JSON decoding", ("decode_json", "msgspec")),
    ("raw-body compression", ("zlib", "compress")),
    ("storage: merges into data_points", ("merge (kpihub/storage/_sqlite_staging", "merge_alone")),
    ("storage: staging (counts + insert)", ("_sqlite_staging.py", "_sql.py")),
    ("storage: commit (WAL write + fsync)", ("_commit_group (kpihub/storage/_sqlite_writer.py",)),
    (
        "storage: writer socket (pickle, send)",
        ("_sqlite_link.py", "kpihub/storage/_sqlite_writer.py", "multiprocessing/connection"),
    ),
    ("storage: reads on the event loop", ("SqliteStorage._one", "bearer_context")),
    ("storage: checkpoints", ("_Checkpointer",)),
    ("authentication + throttle", ("oauth/", "ratelimit.py", "limits/")),
    ("ingest route (the rest of it)", ("ingest/routes.py",)),
    ("HTTP: uvicorn, Starlette, middleware", ("uvicorn/", "starlette/", "metrics.py", "httptools")),
]
OTHER = "event loop and the rest"


def categorise(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames[1:]):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return OTHER


def process_of(stack: str) -> str:
    """``writer`` for a sample of the SQLite writer process, ``server`` otherwise."""
    thread = stack.find("thread (")
    return "writer" if "kpihub.storage._sqlite_writer" in stack[:thread] else "server"


def summarise(raw: Path, rate: int, elements: int) -> list[tuple[str, str, int, float]]:
    """(category, process, samples, µs per element), biggest first."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        # py-spy counts a thread waiting on a lock or the network as idle and drops it
        # (the writer process waiting for jobs in select, too); a worker thread parked
        # on its pool's condition is such a wait, seen through Python frames.
        if "Condition.wait" in stack:
            continue
        counts[categorise(stack), process_of(stack)] += int(n)
    return [
        (name, process, samples, samples / rate / elements * 1e6)
        for (name, process), samples in counts.most_common()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output here")
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy not found: pip install -e '.[bench]'")

    with tempfile.TemporaryDirectory(prefix="kpihub-profile-") as tmp:
        env = kpihub_env(Path(tmp))
        tenant = setup_tenant(env)
        with serve(env) as server:
            access = token(server.port, tenant)
            points = generate(3, 0, int(args.seconds * 150_000) + 200_000)
            requests = [
                kpi_request(tenant, access, kpihub_body(points[i : i + args.batch]))
                for i in range(0, len(points), args.batch)
            ]
            warm = 200_000 // args.batch
            asyncio.run(load([server.port], requests[:warm], args.batch, args.concurrency, 2.0))
            raw = args.raw or Path(tmp) / "profile.txt"
            command = [spy, "record", "-p", str(server.pid), "-r", str(args.rate)]
            command += ["-d", str(int(args.seconds)), "--threads", "--subprocesses"]
            command += ["-f", "raw", "-o", str(raw)]
            profiler = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(0.5)  # py-spy attaches
            writer = server.writer_pid()
            pids = {"server": server.pid, **({"writer": writer} if writer else {})}
            before = {name: cpu_times(pid) for name, pid in pids.items()}
            result = asyncio.run(
                load(
                    [server.port],
                    requests[warm:],
                    args.batch,
                    args.concurrency,
                    int(args.seconds),
                    cycle=False,
                )
            )
            used = {
                name: [b - a for a, b in zip(start, cpu_times(pids[name]), strict=True)]
                for name, start in before.items()
            }
            profiler.wait()
            rows = summarise(raw, args.rate, result.acked_elements)

    print(
        f"{result.elements_per_s:,.0f} elements/s acknowledged while profiled "
        f"({result.acked_elements:,} elements in {result.seconds:.1f} s, "
        f"{args.concurrency} connections, {args.batch}-element batches)"
    )
    print(f"{'category':<40} {'process':<8} {'samples':>8} {'µs/element':>11}")
    for name, process, samples, us in rows:
        print(f"{name:<40} {process:<8} {samples:>8} {us:>11.2f}")
    for process in ("server", "writer"):
        mine = [r for r in rows if r[1] == process]
        total = f"total CPU, {process}"
        print(f"{total:<49} {sum(r[2] for r in mine):>8} {sum(r[3] for r in mine):>11.2f}")
    print(f"{'total CPU':<49} {sum(r[2] for r in rows):>8} {sum(r[3] for r in rows):>11.2f}")
    # What the kernel counted over the load (py-spy's own overhead included): system
    # time is what the samples cannot split (writes, fsync, page faults).
    for process, (user, system) in used.items():
        per = 1e6 / result.acked_elements
        print(
            f"kernel-counted CPU, {process}: user {user * per:.2f} + system {system * per:.2f}"
            f" µs/element ({(user + system) / result.seconds:.0%} of a core)"
        )


if __name__ == "__main__":
    main()
