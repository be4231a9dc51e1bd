"""What writers were told versus what the store holds, after a crash or an outage.

``Writer`` pushes batches to a real server (new elements mixed with re-sends of its
own elements, each value never sent before) and remembers every send and its
outcome; ``consistency_problems`` reads the store through a connection of its own
and lists everything that contradicts what the writers were told:

* every element of an acknowledged (200) batch holds the value of its last
  acknowledged send, or of a later send whose outcome is unknown (its answer never
  arrived, or it was a 503: it may or may not have been stored);
* no batch is half stored: every element of a batch that has an audit record
  holds that batch's value or a later batch's, and every stored value belongs to a
  batch that has an audit record — so a batch cut short left all of its elements
  or none;
* every acknowledged batch has its audit record (the raw body, compressed), and
  the audit records hold exactly bodies that were sent.

Each element belongs to one writer, and a writer waits for each answer before its
next request, so the sends of one element are ordered and "later" is well defined.
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from dataclasses import dataclass, field

import httpx

from tests import databases
from tests.functional.server import ServerProcess

TENANT = "acme"
INTEGRATION = "acme-pos"
CONTEXT = "consistency"
MAX_ELEMENTS = 12


@dataclass
class Send:
    """One request: its body, the value it sends per element, and what came of it."""

    writer: int
    seq: int  # order among the writer's sends
    body: bytes
    values: dict[str, float]
    batch_id: str | None = None  # from the 200; None while unknown
    acked: bool = False


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic()
    answered_at: float
    status: int


@dataclass
class Writer:
    """A client's state across rounds (or phases of an outage) and its sends."""

    index: int
    rng: random.Random
    sends: list[Send] = field(default_factory=list)
    known: list[str] = field(default_factory=list)  # ids sent at least once
    counter: int = 0
    problems: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    timeout: float = 30.0  # seconds the writer waits for an answer

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

    def run(
        self, server: ServerProcess, token: str, *, until: threading.Event | None = None
    ) -> None:
        """Send until the server goes away, or, with ``until``, until it is set.

        Without ``until`` (a crash test), anything but a 200 is a problem. With it (a
        store outage), a 503 with ``Retry-After`` is expected too: its outcome is
        unknown, like a request cut by a kill; the server going away is a problem.
        """
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with server.http(TENANT, timeout=self.timeout) as http:
            while until is None or not until.is_set():
                send = self.next_send()
                self.sends.append(send)
                sent_at = time.monotonic()
                try:
                    response = http.post("/api/external/v1/kpi", content=send.body, headers=headers)
                except httpx.TransportError as exc:
                    if until is not None:
                        self.problems.append(f"writer {self.index}: no answer ({exc!r})")
                    return  # killed in flight (or before): the outcome is unknown
                status = response.status_code
                self.answers.append(Answer(sent_at, time.monotonic(), status))
                if status == 200:
                    send.batch_id = response.json()["batch_id"]
                    send.acked = True
                elif until is not None and status == 503 and response.headers.get("Retry-After"):
                    time.sleep(0.02)
                else:
                    self.problems.append(f"writer {self.index}: {status} {response.text[:300]}")
                    return


class Load:
    """``count`` writers pushing batches in the background, from start until ``stop``.

    Each waits at most ``timeout`` seconds for an answer; a 503 with ``Retry-After``
    is an expected answer (an outage), anything else but a 200 is a problem.
    """

    def __init__(
        self, server: ServerProcess, token: str, count: int, *, timeout: float = 30.0
    ) -> None:
        self.writers = [Writer(i, random.Random(i), timeout=timeout) for i in range(count)]
        self._until = threading.Event()
        self._threads = [
            threading.Thread(target=w.run, args=(server, token), kwargs={"until": self._until})
            for w in self.writers
        ]
        for thread in self._threads:
            thread.start()

    def each_answered(self, status: int, after: float) -> bool:
        """Whether every writer had a ``status`` answer to a request sent after ``after``."""
        return all(
            any(a.status == status and a.sent_at > after for a in list(w.answers))
            for w in self.writers
        )

    def answers_between(self, start: float, end: float) -> list[int]:
        """Statuses of the requests sent after ``start`` and answered before ``end``."""
        return [
            a.status
            for w in self.writers
            for a in w.answers
            if a.sent_at > start and a.answered_at < end
        ]

    def statuses(self) -> set[int]:
        return {a.status for w in self.writers for a in w.answers}

    def stop(self) -> None:
        """Stop the writers; fail on any problem one of them met."""
        self._until.set()
        for thread in self._threads:
            thread.join(2 * self.writers[0].timeout)
            assert not thread.is_alive(), "a writer hangs"
        problems = [p for w in self.writers for p in w.problems]
        assert not problems, problems


def stored_points(database_url: str) -> dict[str, tuple[float, str]]:
    """element id -> (value, batch id) of every stored point of the test's context."""
    found = databases.rows(
        database_url,
        "SELECT element_id, value, batch_id FROM data_points WHERE context = ?",
        CONTEXT,
    )
    return {row[0]: (float(row[1]), row[2]) for row in found}


def audit_records(database_url: str) -> dict[str, bytes]:
    """batch id -> raw body of every batch of the writers' context the endpoint kept.

    Refused requests (kept without a context) fail the test: the load sends none.
    """
    found = databases.rows(
        database_url,
        "SELECT id, http_status, raw_body FROM batches WHERE context = ? OR context IS NULL",
        CONTEXT,
    )
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
