"""The 200 body of an accepted batch.

Rendered by the store inside the batch's transaction (an Idempotency-Key record keeps
exactly what was sent), which on SQLite is the writer process: so this module imports
only msgspec, and the writer unpickling ``render(batch_id)`` loads nothing heavier.
"""

from __future__ import annotations

import functools

import msgspec

from kpihub.domain import BatchCounts
from kpihub.storage.base import RenderAck

_encoder = msgspec.json.Encoder()


def render(batch_id: str) -> RenderAck:
    """The store's ACK render for ``batch_id``: a partial, so it can be pickled."""
    return functools.partial(body, batch_id)


def body(batch_id: str, counts: BatchCounts) -> bytes:
    return _encoder.encode(
        {
            "status": "ok",
            "message": "Data received.",
            "batch_id": batch_id,
            "received": counts.received,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
        }
    )
