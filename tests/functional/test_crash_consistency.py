"""Crash consistency: a real ``kpihub serve`` SIGKILLed at random moments under load.

Several writers push batches concurrently (new elements mixed with re-sends of
elements already sent, each with a value never sent before), the server is killed
at a random moment, restarted on the same database, and what the store holds is
read back through a connection of the test's own. That, 20 times in a row:

* every element of an acknowledged (200) batch holds the value of its last
  acknowledged send, or of a later send whose answer never arrived (killed in
  flight: it may or may not have been stored);
* no batch is half stored: every element of a batch that has an audit record
  holds that batch's value or a later batch's, and every stored value belongs to a
  batch that has an audit record — so a batch killed in flight left all of its
  elements or none;
* every acknowledged batch has its audit record (the raw body, compressed), and
  the audit records hold exactly the bodies that were sent.

Each element belongs to one writer, and a writer waits for each answer before its
next request, so the sends of one element are ordered and "later" is well defined.
The kill moments and batch shapes come from a seeded RNG; the seed is printed (set
``KPIHUB_CRASH_SEED`` to replay one; thread timing still varies from run to run).
"""

from __future__ import annotations

import json
import os
import random
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import databases
from tests.functional.server import Kpihub, ServerProcess, get_token, new_client

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"
CONTEXT = "crash"
ROUNDS = 20
WRITERS = 4
MAX_ELEMENTS = 12
KILL_AFTER = (0.15, 0.8)
"""Seconds of load before the kill, drawn uniformly per round."""


@dataclass
class Send:
    """One request: its body, the value it sends per element, and what came of it."""

    writer: int
    seq: int  # order among the writer's sends
    body: bytes
    values: dict[str, float]
    batch_id: str | None = None  # from the 200; None while unknown
    acked: bool = False


@dataclass
class Writer:
    """A client's state across rounds; ``run`` sends until the server goes away."""

    index: int
    rng: random.Random
    sends: list[Send] = field(default_factory=list)
    known: list[str] = field(default_factory=list)  # ids sent at least once
    counter: int = 0
    problems: list[str] = field(default_factory=list)

    def next_send(self) -> Send:
        values: dict[str, float] = {}
        for _ in range(self.rng.randint(1, MAX_ELEMENTS)):
            if self.known and self.rng.random() < 0.6:
                element = self.rng.choice(self.known)
            else:
                element = f"w{self.index}-{len(self.known)}"
                self.known.append(element)
            if element in values:
                continue  # the same id twice in one batch is a 422
            self.counter += 1
            values[element] = float(self.index * 1_000_000_000 + self.counter)
        doc = {
            "type": INTEGRATION,
            "version": "1.0.0",
            "context": CONTEXT,
            "data": [
                {
                    "user_id": f"writer-{self.index}",
                    "elements": [
                        {
                            "id": element,
                            "kpi": "points",
                            "object_type": "number",
                            "value": value,
                            "timestamp": 1_700_000_000,
                        }
                        for element, value in values.items()
                    ],
                }
            ],
        }
        return Send(self.index, len(self.sends), json.dumps(doc).encode(), values)

    def run(self, server: ServerProcess, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with server.http(TENANT, timeout=30.0) as http:
            while True:
                send = self.next_send()
                self.sends.append(send)
                try:
                    response = http.post("/api/external/v1/kpi", content=send.body, headers=headers)
                except httpx.TransportError:
                    return  # killed in flight (or before): the outcome is unknown
                if response.status_code != 200:
                    self.problems.append(
                        f"writer {self.index}: {response.status_code} {response.text[:300]}"
                    )
                    return
                send.batch_id = response.json()["batch_id"]
                send.acked = True


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


def stored_points(database_url: str) -> dict[str, tuple[float, str]]:
    """element id -> (value, batch id) of every stored point of the test's context."""
    found = databases.rows(
        database_url,
        "SELECT element_id, value, batch_id FROM data_points WHERE context = ?",
        CONTEXT,
    )
    return {row[0]: (float(row[1]), row[2]) for row in found}


def audit_records(database_url: str) -> dict[str, bytes]:
    """batch id -> raw body of every batch the ingestion endpoint kept."""
    found = databases.rows(database_url, "SELECT id, http_status, raw_body FROM batches")
    refused = [row[:2] for row in found if row[1] != 200]
    assert not refused, f"requests refused under load: {refused}"
    return {row[0]: zlib.decompress(row[2]) for row in found}


def consistency_problems(database_url: str, writers: list[Writer]) -> list[str]:
    """Everything the store holds that contradicts what the writers were told."""
    sends = [s for w in writers for s in w.sends]
    by_body = {s.body: s for s in sends}
    points = stored_points(database_url)
    problems: list[str] = []

    audit: dict[str, Send] = {}
    for batch_id, body in audit_records(database_url).items():
        send = by_body.get(body)
        if send is None:
            problems.append(f"audit record {batch_id} holds a body no writer sent")
        elif send.acked and send.batch_id != batch_id:
            problems.append(f"audit record {batch_id} holds the body acked as {send.batch_id}")
        else:
            audit[batch_id] = send
    for send in sends:
        if send.acked and send.batch_id not in audit:
            problems.append(f"acked batch {send.batch_id} has no audit record")

    # No write without its batch: every stored value is its audited batch's value.
    for element, (value, batch_id) in points.items():
        owner = audit.get(batch_id)
        if owner is None:
            problems.append(f"{element}={value} was written by {batch_id}, which has no audit")
        elif owner.values.get(element) != value:
            problems.append(
                f"{element}={value} differs from its batch {batch_id}: {owner.values.get(element)}"
            )
    # No half batch: each element of an audited batch holds it, or a later batch.
    for batch_id, send in audit.items():
        for element in send.values:
            if element not in points:
                problems.append(f"batch {batch_id} is half stored: {element} is missing")
                continue
            holder = audit.get(points[element][1])
            if holder is not None and holder is not send and holder.seq < send.seq:
                problems.append(
                    f"{element} holds batch {points[element][1]} although the later batch "
                    f"{batch_id} that sent it is stored"
                )
    # Acknowledged values: the last acked send of each element, or a later unknown one.
    history: dict[str, list[Send]] = {}
    for send in sends:
        for element in send.values:
            history.setdefault(element, []).append(send)
    for element, element_sends in history.items():
        acked = [i for i, s in enumerate(element_sends) if s.acked]
        start = acked[-1] if acked else 0
        allowed = {id(s) for s in element_sends[start:]}
        stored = points.get(element)
        if stored is None:
            if acked:
                last = element_sends[start]
                problems.append(f"{element} was acked (batch {last.batch_id}) but is not stored")
            continue
        holder = audit.get(stored[1])
        if holder is None or id(holder) not in allowed:
            expected = element_sends[start]
            problems.append(
                f"{element} holds {stored[0]} (batch {stored[1]}); expected the acked "
                f"{expected.values[element]} (batch {expected.batch_id}) or a later send"
            )
    return problems


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
