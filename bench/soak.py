"""Soak: mixed token, ingest and query traffic at a fixed rate against one ``kpihub serve``.

    python -m bench.soak [--minutes 30] [--rate 30] [--backend sqlite|postgres]

Starts a real server (default settings, its JSON log at info level written to a file)
and sends requests on a fixed schedule, open loop: request i is due at ``i / rate``
seconds whatever the answers, and its latency is counted from then, so a slow server
cannot slow the load down and hide it. Of every 100 requests: 60 ingest a 50-element
batch (one in five re-sends an earlier batch with new values: updates), 25 query (points,
series, leaderboard over the last feed hour), 5 get a token, and 10 come from a
client whose limit per minute is half of what it sends: its 429s are intended.

Prints per minute, per kind: requests, p50 and p99 latency, and the answers that were
not the expected ones; the server's RSS each minute; at the end, RSS after the warm-up
and at the end. Then it checks the server's log: one access line for every request sent,
and no line at error level, and prints the server's commit-time histogram (``/metrics``),
which tells whether slow writes were slow commits.

Exits non-zero when any request got an unintended answer (anything but 200, or 429 for
the greedy client; a dropped connection counts), the greedy client was never refused,
the server's RSS at the end is more than 10% above the RSS after the warm-up, or the
log does not match what was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Server,
    Tenant,
    add_client,
    exchange,
    kpi_request,
    kpihub_env,
    postgres_database,
    serve,
    setup_tenant,
    token,
    token_request,
)
from bench.ingest import FEED_START, batch_body

KINDS = ("token", "ingest", "query", "greedy")
# Of every 100 requests; the pattern is spread evenly over each second's requests.
MIX = {"ingest": 60, "query": 25, "token": 5, "greedy": 10}
INTENDED = {"token": {200}, "ingest": {200}, "query": {200}, "greedy": {200, 429}}
BATCH = 50
MAX_RSS_GROWTH = 0.10
IDLE_CLOSE = 3.0  # seconds: uvicorn closes keep-alive connections idle for 5 s
FEED_SECONDS_PER_BATCH = 6  # bench.ingest's live feed


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else math.nan


@dataclass
class Minute:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    rss_mb: float = math.nan


@dataclass
class Results:
    minutes: dict[int, Minute] = field(default_factory=lambda: defaultdict(Minute))
    unintended: Counter[tuple[str, int]] = field(default_factory=Counter)
    sent: int = 0
    late: int = 0  # sent more than 100 ms after they were due (the load generator lagged)

    def record(self, minute: int, kind: str, status: int, seconds: float) -> None:
        m = self.minutes[minute]
        m.latencies[kind].append(seconds)
        m.statuses[kind][status] += 1
        if status not in INTENDED[kind]:
            self.unintended[(kind, status)] += 1


class Pool:
    """Keep-alive connections to the server, reused while fresh."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self.idle:
            reader, writer, last = self.idle.pop()
            if now - last < IDLE_CLOSE:
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", self.port)

    def give(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.idle.append((reader, writer, time.monotonic()))

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


def query_request(tenant: Tenant, access: str, n: int, feed_now: int, request_id: str) -> bytes:
    """One of three reads, in turn, over the last hour of the feed.

    Not the catalog: it counts every point of the environment (O(points) per call), so
    at this rate it would measure only how the dataset grew.
    """
    window = {"from": str(feed_now - 3600), "to": str(feed_now + 600)}
    path, params = [
        ("", {"kpi": "points", "limit": "100", **window}),
        ("/series", {"kpi": "device_sales", "agg": "sum", "interval": "hour", **window}),
        ("/leaderboard", {"kpi": "profit", "by": "user_id", "limit": "10", **window}),
    ][n % 3]
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return (
        f"GET /api/external/v1/kpi{path}{query} HTTP/1.1\r\n"
        f"Host: {tenant.name}.localhost\r\n"
        f"Authorization: Bearer {access}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


def with_request_id(request: bytes, request_id: str) -> bytes:
    head, sep, body = request.partition(b"\r\n")
    return head + sep + f"X-Request-ID: {request_id}\r\n".encode() + body


def schedule() -> list[str]:
    """The kinds of 100 consecutive requests, in a fixed shuffled order."""
    slots = [kind for kind, share in MIX.items() for _ in range(share)]
    random.Random(7).shuffle(slots)
    return slots


@dataclass
class Soak:
    server: Server
    tenant: Tenant
    writers: list[Tenant]
    greedy: Tenant
    write_tokens: list[str]
    read_token: str
    greedy_token: str
    rate: float
    seconds: float
    warmup: float
    greedy_limit: int
    results: Results = field(default_factory=Results)
    rss_after_warmup: float = math.nan
    rss_end: float = math.nan
    rng: random.Random = field(default_factory=lambda: random.Random(42))
    new_batches: int = 0
    ingests: int = 0
    printed: set[int] = field(default_factory=set)

    def request(self, kind: str, i: int) -> bytes:
        request_id = f"soak-{i}"
        if kind == "token":
            return token_request(
                self.writers[i % len(self.writers)], headers={"X-Request-ID": request_id}
            )
        if kind == "query":
            feed_now = int(FEED_START.timestamp()) + self.new_batches * FEED_SECONDS_PER_BATCH
            return query_request(self.tenant, self.read_token, i, feed_now, request_id)
        if kind == "greedy":
            body = batch_body(self.tenant, 10**9 + i, 1, self.rng)
            return with_request_id(kpi_request(self.tenant, self.greedy_token, body), request_id)
        self.ingests += 1
        if self.ingests % 5 == 0 and self.new_batches > 100:
            number = self.new_batches - 100  # sent before: new values, so updates
        else:
            number = self.new_batches
            self.new_batches += 1
        access = self.write_tokens[i % len(self.write_tokens)]
        body = batch_body(self.tenant, number, BATCH, self.rng)
        return with_request_id(kpi_request(self.tenant, access, body), request_id)

    async def one(self, pool: Pool, kind: str, request: bytes, due: float, start: float) -> None:
        status = 0  # no answer: the connection failed
        try:
            reader, writer = await pool.take()
            try:
                status, _ = await exchange(reader, writer, request)
            except BaseException:
                writer.close()
                raise
            pool.give(reader, writer)
        except (OSError, asyncio.IncompleteReadError) as exc:
            print(f"  {kind}: {type(exc).__name__}: {exc}", file=sys.stderr)
        done = time.monotonic()
        self.results.record(int((done - start) // 60), kind, status, done - due)

    async def run(self) -> None:
        pool = Pool(self.server.port)
        slots = schedule()
        start = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        reporter = asyncio.create_task(self.report_minutes(start))
        baseline = asyncio.create_task(self.sample_after_warmup(start))
        i = 0
        while True:
            due = start + i / self.rate
            if due - start >= self.seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                self.results.late += 1
            kind = slots[i % len(slots)]
            task = asyncio.create_task(self.one(pool, kind, self.request(kind, i), due, start))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.results.sent += 1
            i += 1
        await asyncio.gather(*tasks)
        self.rss_end = self.server.rss_kib() / 1024
        await baseline
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        for minute in sorted(set(self.results.minutes) - self.printed):  # the last one(s)
            self.results.minutes[minute].rss_mb = self.rss_end
            print(format_minute(minute, self.results.minutes[minute]), flush=True)
        pool.close()

    async def prefill(self, elements: int, concurrency: int = 4) -> float:
        """Load ``elements`` new points in 1,000-element batches as fast as the server takes
        them; the seconds it took.

        The store's caches (SQLite's writer keeps up to 64 MiB of pages) grow with the
        data until they are full; filling them first keeps that growth out of the RSS
        comparison, which is about leaks.
        """
        batches = iter(range(self.new_batches, self.new_batches + elements // 1000))
        self.new_batches += elements // 1000
        access = self.write_tokens[0]

        async def worker() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            try:
                for number in batches:
                    body = batch_body(self.tenant, number, 1000, self.rng)
                    status, answer = await exchange(
                        reader, writer, kpi_request(self.tenant, access, body)
                    )
                    if status != 200:
                        raise SystemExit(f"prefill refused: {status} {answer[:300]!r}")
            finally:
                writer.close()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - started

    async def sample_after_warmup(self, start: float) -> None:
        await asyncio.sleep(max(0.0, start + self.warmup - time.monotonic()))
        self.rss_after_warmup = self.server.rss_kib() / 1024

    async def report_minutes(self, start: float) -> None:
        minute = 0
        while True:
            await asyncio.sleep(max(0.0, start + (minute + 1) * 60 + 1 - time.monotonic()))
            rss = self.server.rss_kib() / 1024
            self.results.minutes[minute].rss_mb = rss
            print(format_minute(minute, self.results.minutes[minute]), flush=True)
            self.printed.add(minute)
            minute += 1


def format_minute(minute: int, m: Minute) -> str:
    parts = [f"min {minute + 1:>3}"]
    for kind in KINDS:
        ordered = sorted(m.latencies.get(kind, []))
        statuses = m.statuses.get(kind, Counter())
        other = {s: n for s, n in statuses.items() if s not in (200, 429)}
        extra = f" 429x{statuses[429]}" if kind == "greedy" else ""
        extra += "".join(f" {s or 'conn'}x{n}" for s, n in sorted(other.items()))
        parts.append(
            f"{kind} {len(ordered):>4} p50 {percentile(ordered, 0.5):6.1f} "
            f"p99 {percentile(ordered, 0.99):6.1f} ms{extra}"
        )
    parts.append(f"rss {m.rss_mb:6.1f} MB")
    return " | ".join(parts)


def check_log(path: Path, sent: int) -> list[str]:
    """Problems with the server's log: each soak request once, nothing at error level.

    The server logs a request just after its answer: the last lines may take a moment.
    """
    for _ in range(50):
        problems = _log_problems(path, sent)
        if not problems:
            break
        time.sleep(0.2)
    return problems


def _log_problems(path: Path, sent: int) -> list[str]:
    seen: Counter[str] = Counter()
    problems = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(f"a log line is not JSON: {line[:200]!r}")
            continue
        if record.get("level") in ("error", "critical"):
            problems.append(f"error logged: {line[:300]}")
        request_id = record.get("request_id", "")
        if record.get("logger") == "kpihub.access" and request_id.startswith("soak-"):
            seen[request_id] += 1
    missing = sent - len(seen)
    if missing:
        problems.append(f"{missing} soak requests have no access-log line")
    doubled = [r for r, n in seen.items() if n != 1]
    if doubled:
        problems.append(f"{len(doubled)} soak requests logged more than once")
    return problems[:20]


def commit_times(port: int) -> str:
    """The server's commit-time histogram (``/metrics``) in one line."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "kpihub_store_commit_duration_seconds_bucket":
                buckets[s.labels["le"]] = buckets.get(s.labels["le"], 0.0) + s.value
    total = buckets.get("+Inf", 0.0)
    if not total:
        return "store commits: none"
    shares = ", ".join(
        f"<= {float(le) * 1000:g} ms {n / total:.1%}"
        for le, n in buckets.items()
        if le in ("0.01", "0.05", "0.1", "0.5")
    )
    return f"store commits: {total:,.0f}; {shares}; over 500 ms: {total - buckets['0.5']:,.0f}"


def summarise(soak: Soak, log_problems: list[str]) -> bool:
    r = soak.results
    totals: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    for m in r.minutes.values():
        for kind, values in m.latencies.items():
            totals[kind].extend(values)
        for kind, counts in m.statuses.items():
            statuses[kind].update(counts)
    print()
    print(
        f"requests sent: {r.sent:,} in {soak.seconds / 60:g} min ({soak.rate:g}/s); late {r.late}"
    )
    for kind in KINDS:
        ordered = sorted(totals[kind])
        answers = ", ".join(f"{s or 'no answer'}: {n:,}" for s, n in sorted(statuses[kind].items()))
        print(
            f"  {kind:<7} p50 {percentile(ordered, 0.5):6.1f} ms, "
            f"p99 {percentile(ordered, 0.99):6.1f} ms; {answers}"
        )
    unintended = sum(r.unintended.values())
    print(f"unintended answers: {unintended}" + (f" {dict(r.unintended)}" if unintended else ""))
    intended_429 = statuses["greedy"][429]
    print(f"intended 429s (greedy client, {soak.greedy_limit}/min): {intended_429:,}")
    growth = (soak.rss_end - soak.rss_after_warmup) / soak.rss_after_warmup
    print(
        f"RSS after warm-up ({soak.warmup / 60:.2g} min): {soak.rss_after_warmup:.1f} MB, at the "
        f"end: {soak.rss_end:.1f} MB ({growth:+.1%}; limit +{MAX_RSS_GROWTH:.0%})"
    )
    print(f"server log: {'ok' if not log_problems else '; '.join(log_problems)}")
    ok = unintended == 0 and intended_429 > 0 and growth <= MAX_RSS_GROWTH and not log_problems
    print("PASS" if ok else "FAIL")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="minutes before the RSS baseline (default: a sixth of the run, 0.5 to 5)",
    )
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin connection; the soak creates and drops its own database",
    )
    parser.add_argument("--redis-url", default="memory://")
    parser.add_argument(
        "--prefill",
        type=int,
        default=400_000,
        help="points loaded before the timed run, so the store's caches are full (0: none)",
    )
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(5.0, max(0.5, args.minutes / 6))
    if warmup >= args.minutes:
        parser.error(f"--warmup {warmup:g} must be shorter than --minutes {args.minutes:g}")

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kpihub-soak-")))
        database_url = None
        if args.backend == "postgres":
            database_url = stack.enter_context(postgres_database(args.postgres_url))
        env = kpihub_env(tmp, database_url, redis_url=args.redis_url, log_level="info")
        tenant = setup_tenant(env)
        writers = [tenant, add_client(env, tenant), add_client(env, tenant)]
        # Half of what the greedy client sends in a minute.
        greedy_limit = max(1, round(args.rate * MIX["greedy"] / 100 * 60 / 2))
        greedy = add_client(env, tenant, rate_limit=greedy_limit, name="greedy")
        log = tmp / "server.log"
        server = stack.enter_context(serve(env, log=log))
        soak = Soak(
            server=server,
            tenant=tenant,
            writers=writers,
            greedy=greedy,
            write_tokens=[token(server.port, w, "kpi:write") for w in writers],
            read_token=token(server.port, tenant, "kpi:read"),
            greedy_token=token(server.port, greedy, "kpi:write"),
            rate=args.rate,
            seconds=args.minutes * 60,
            warmup=warmup * 60,
            greedy_limit=greedy_limit,
        )
        print(
            f"Soak: {args.minutes:g} min at {args.rate:g} requests/s on {args.backend} "
            f"(mix {MIX}), warm-up {warmup:.2g} min, server pid {server.pid}",
            flush=True,
        )
        if args.prefill:
            took = asyncio.run(soak.prefill(args.prefill))
            print(f"prefill: {args.prefill:,} points in {took:.0f} s", flush=True)
        cpu_before = server.cpu_seconds()
        asyncio.run(soak.run())
        cpu = server.cpu_seconds() - cpu_before
        print(f"server CPU: {cpu:.0f} s ({cpu / soak.seconds:.0%} of one core)")
        print(commit_times(server.port))
        problems = check_log(log, soak.results.sent)
    return 0 if summarise(soak, problems) else 1


if __name__ == "__main__":
    sys.exit(main())
