"""What the client hands back: acknowledgements, batches ready to send, counters."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's acknowledgement of one or more requests (2xx: the data is stored).

    ``batch_ids`` names every request's batch, in order; ``batch_id`` is the first.
    ``replayed`` is true when every answer was replayed for an ``Idempotency-Key``
    already seen (a retry of a request the server had applied).
    """

    batch_ids: tuple[str, ...]
    received: int
    created: int
    updated: int
    unchanged: int
    replayed: bool = False

    @property
    def batch_id(self) -> str:
        return self.batch_ids[0] if self.batch_ids else ""

    @property
    def requests(self) -> int:
        return len(self.batch_ids)

    @classmethod
    def combine(cls, acks: list[Ack]) -> Ack:
        return cls(
            batch_ids=tuple(b for a in acks for b in a.batch_ids),
            received=sum(a.received for a in acks),
            created=sum(a.created for a in acks),
            updated=sum(a.updated for a in acks),
            unchanged=sum(a.unchanged for a in acks),
            replayed=bool(acks) and all(a.replayed for a in acks),
        )


def new_key() -> str:
    """A fresh ``Idempotency-Key``: one per batch, kept across its retries and resumes."""
    return f"kh-{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's body (uncompressed JSON) and the key that makes its retries safe.

    ``origins[i][j]`` says where ``data.i.elements.j`` came from in the input
    (``"line 12"``, ``"data.3.elements.0"``), so server errors can point at the input;
    empty when unknown (e.g. a batch read back from an outbox).
    """

    body: bytes
    elements: int
    key: str = field(default_factory=new_key)
    origins: tuple[tuple[str, ...], ...] = ()

    def origin(self, path: str) -> str | None:
        """Where the input of an error path such as ``data.3.elements.7.value`` came from."""
        parts = path.split(".")
        if len(parts) < 2 or parts[0] != "data" or not parts[1].isdigit():
            return None
        i = int(parts[1])
        j = int(parts[3]) if len(parts) > 3 and parts[2] == "elements" and parts[3].isdigit() else 0
        if i < len(self.origins) and j < len(self.origins[i]):
            return self.origins[i][j]
        return None


@dataclass(slots=True)
class Stats:
    """What a client did so far (for summaries and tests)."""

    requests: int = 0
    retries: int = 0
    tokens_fetched: int = 0
    throttled_seconds: float = 0.0
    bytes_sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
