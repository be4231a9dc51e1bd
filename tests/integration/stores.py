"""Building blocks of the storage tests: batches to write, what a store wrote."""

from __future__ import annotations

import asyncio

from kpihub.domain import BatchCounts, BatchWrite, Client, DataPoint, ParsedBatch, Tenant
from kpihub.storage import Storage

RECEIVED_AT = 1_700_000_000.0


def point(element_id: str, value: float = 1.0) -> DataPoint:
    return DataPoint(
        element_id, "sales", "number", value, "Eur", 1568120963, None, None, "u1", None
    )


def write(
    tenant: Tenant,
    client: Client,
    batch_id: str,
    ids: list[str],
    *,
    value: float = 1.0,
    context: str = "sales",
    key: str | None = None,
    request_hash: str | None = None,
) -> BatchWrite:
    return BatchWrite(
        batch_id=batch_id,
        tenant_id=tenant.id,
        environment=client.environment,
        client_pk=client.id,
        batch=ParsedBatch("acme-pos", "1.0.0", context, [point(i, value) for i in ids]),
        raw_body=b"raw " + batch_id.encode(),
        received_at=RECEIVED_AT,
        idempotency_key=key,
        request_hash=request_hash if key else None,
    )


def render(counts: BatchCounts) -> bytes:
    return f"{counts.received}/{counts.created}/{counts.updated}/{counts.unchanged}".encode()


def broken(counts: BatchCounts) -> bytes:
    """A render that fails (module-level: SQLite's writer process unpickles it)."""
    raise RuntimeError("render failed")


async def update_same_elements(store: Storage, tenant: Tenant, client: Client) -> list[BatchCounts]:
    """Batches b0..b19, sent at once, each writing elements 0-9 with value n.

    Asserts each element is created once and written by every batch; returns the
    counts of the batches that answered.
    """
    ids = [str(i) for i in range(10)]
    results = await asyncio.gather(
        *(
            store.ingest(write(tenant, client, f"b{n}", ids, value=float(n)), render)
            for n in range(20)
        )
    )
    counts = [r[0] for r in results if r is not None]
    assert sum(c.created for c in counts) == 10
    assert sum(c.created + c.updated for c in counts) == 10 * 20
    return counts
