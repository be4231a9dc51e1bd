"""Data of chosen ages for the retention tests, written through a real store.

Each seeded tenant gets, in both environments and two contexts, batches received 100
and 10 days ago, each holding points of two KPIs timestamped 400, 31, 29 and 1 days
ago, and one refused request received 100 days ago. With a 30-day retention, the
purge must delete exactly the points of 400 and 31 days and the requests of 100 days.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from kpihub.domain import (
    BatchCounts,
    BatchWrite,
    DataPoint,
    Environment,
    NewClient,
    ParsedBatch,
    RequestRecord,
)
from kpihub.settings import Settings
from kpihub.storage import Storage, open_storage

DAY = 86_400
POINT_AGES = (400, 31, 29, 1)  # days before "now" of the points' timestamps
BATCH_AGES = (100, 10)  # days before "now" their batches were received
CONTEXTS = ("sales", "hr")
KPIS = ("revenue", "bonus")
INTEGRATION = "acme-pos"

Key = tuple[str, str, str]  # (environment, context, element_id)


def element_id(kpi: str, point_age: int, batch_age: int) -> str:
    return f"{kpi}-{point_age}d-recv{batch_age}d"


def _render(counts: BatchCounts) -> bytes:
    return f"{counts.created}".encode()


async def seed(store: Storage, tenant_id: int, now: int) -> None:
    """Write the data described above for ``tenant_id``."""
    client = await store.create_client(
        NewClient(
            tenant_id=tenant_id,
            environment=Environment.TESTING,
            name="seed",
            client_id=f"seed-{tenant_id}",
            secret_hash=b"\x00" * 32,
            scopes=("kpi:write",),
            rate_limit=None,
            token_ttl=None,
            created_at=now,
        )
    )
    for env, context, batch_age in itertools.product(Environment, CONTEXTS, BATCH_AGES):
        points = [
            DataPoint(
                element_id(kpi, age, batch_age),
                kpi,
                "number",
                float(age),
                None,
                now - age * DAY,
                None,
                None,
                "u1",
                None,
            )
            for kpi in KPIS
            for age in POINT_AGES
        ]
        write = BatchWrite(
            batch_id=f"t{tenant_id}-{env.value}-{context}-{batch_age}",
            tenant_id=tenant_id,
            environment=env,
            client_pk=client.id,
            batch=ParsedBatch(INTEGRATION, "1.0.0", context, points),
            raw_body=b"raw",
            received_at=float(now - batch_age * DAY),
        )
        assert await store.ingest(write, _render) is not None
    await store.record_request(
        RequestRecord(
            batch_id=f"t{tenant_id}-refused",
            tenant_id=tenant_id,
            environment=Environment.TESTING,
            client_pk=client.id,
            endpoint="kpi",
            http_status=422,
            received_at=float(now - 100 * DAY),
            duration_ms=1.0,
            raw_body=b"raw",
            body_truncated=False,
        )
    )


def all_points() -> set[Key]:
    return {
        (env.value, context, element_id(kpi, age, batch_age))
        for env, context, batch_age, kpi, age in itertools.product(
            Environment, CONTEXTS, BATCH_AGES, KPIS, POINT_AGES
        )
    }


def kept_points(days: int) -> set[Key]:
    """The seeded points a ``days`` retention keeps (none is exactly at a cutoff)."""
    return {k for k in all_points() if int(k[2].split("-")[1].rstrip("d")) < days}


def batch_ages(tenant_id: int) -> dict[str, int]:
    """Every seeded request of the tenant (accepted and refused) -> days since received."""
    ages = {
        f"t{tenant_id}-{env.value}-{context}-{age}": age
        for env, context, age in itertools.product(Environment, CONTEXTS, BATCH_AGES)
    }
    return {**ages, f"t{tenant_id}-refused": 100}


def kept_batches(tenant_id: int, days: int) -> set[str]:
    return {b for b, age in batch_ages(tenant_id).items() if age < days}


@contextmanager
def store_on(database_url: str) -> Iterator[tuple[Storage, asyncio.Runner]]:
    """A started store on ``database_url`` and the event loop it runs on."""
    with asyncio.Runner() as runner:
        store = open_storage(Settings(database_url=database_url, sqlite_synchronous="normal"))
        runner.run(store.start())
        try:
            yield store, runner
        finally:
            runner.run(store.close())
