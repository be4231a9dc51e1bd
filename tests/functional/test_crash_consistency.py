"""Crash consistency: a real ``kpihub serve`` SIGKILLed at random moments under load.

Several writers push batches concurrently (``tests.functional.acked``), the server
is killed at a random moment, restarted on the same database, and what the store
holds is read back through a connection of the test's own — 20 times in a row, on
each backend. After every restart: every acknowledged element holds its acknowledged
value (or a later one whose answer the kill cut off), no batch is half stored, and
every acknowledged batch has its audit record (see ``acked`` for the exact rules).

The kill moments and batch shapes come from a seeded RNG; the seed is printed (set
``KPIHUB_CRASH_SEED`` to replay one; thread timing still varies from run to run).
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.acked import (
    INTEGRATION,
    TENANT,
    Writer,
    audit_records,
    consistency_problems,
    stored_points,
)
from tests.functional.server import Kpihub, ServerProcess, get_token, new_client

pytestmark = pytest.mark.slow

ROUNDS = 20
WRITERS = 4
KILL_AFTER = (0.15, 0.8)
"""Seconds of load before the kill, drawn uniformly per round."""


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Kpihub:
    # The default durability (SQLite fsyncs every commit), and no throttling in the way.
    cli = Kpihub(tmp_path, database_url, rate_limit="100000000")
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    return cli


@pytest.fixture
def server(cli: Kpihub) -> Iterator[ServerProcess]:
    process = cli.server(name="crash")
    try:
        yield process
    finally:
        process.kill()


def test_acked_batches_survive_repeated_sigkill_under_load(
    cli: Kpihub, server: ServerProcess
) -> None:
    seed = int(os.environ.get("KPIHUB_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash-consistency seed: {seed} (KPIHUB_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    creds = new_client(cli, TENANT)
    writers = [Writer(i, random.Random(rng.random())) for i in range(WRITERS)]
    server.start()
    with server.http(TENANT) as http:
        token = get_token(http, creds)  # the signing keys are in the store: valid after restarts

    for round_no in range(1, ROUNDS + 1):
        threads = [threading.Thread(target=w.run, args=(server, token)) for w in writers]
        for thread in threads:
            thread.start()
        threading.Event().wait(rng.uniform(*KILL_AFTER))
        server.kill()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive(), f"seed {seed}: a writer hangs after the kill"
        refused = [p for w in writers for p in w.problems]
        assert not refused, f"seed {seed}, round {round_no}: {refused}"

        server.start()  # recovery happens here, on the same database
        problems = consistency_problems(cli.database_url, writers)
        assert not problems, f"seed {seed}, round {round_no}:\n" + "\n".join(problems[:20])

    sends = [s for w in writers for s in w.sends]
    acked = [s for s in sends if s.acked]
    audited = audit_records(cli.database_url)
    cut = [s for s in sends if not s.acked]
    print(
        f"{len(acked)} batches acked, {len(cut)} cut by a kill "
        f"({sum(1 for s in cut if s.body in set(audited.values()))} of them stored whole)"
    )
    # The load was real: batches acked in every round, elements re-sent with new values.
    assert len(acked) >= ROUNDS, (seed, len(acked))
    elements_sent = sum(len(s.values) for s in acked)
    assert elements_sent > len(stored_points(cli.database_url)), "no element was ever re-sent"
    assert "Traceback" not in server.log(), server.log()
