"""SQL pieces both backends share: column lists, row mapping, row values.

Placeholders differ (``?`` for SQLite, ``$n`` for PostgreSQL), so statements are
built with a ``mark`` function that renders the n-th placeholder (1-based).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kpihub.domain import (
    BatchCounts,
    BatchWrite,
    Client,
    Environment,
    NewClient,
    RequestRecord,
)

Mark = Callable[[int], str]

CLIENT_COLUMNS = (
    "id, tenant_id, environment, name, client_id, secret_hash, old_secret_hash, scopes, "
    "rate_limit, token_ttl, revoked_at, tokens_valid_after, created_at, last_used_at"
)
POINT_COLUMNS = (
    "tenant_id, environment, type, context, element_id, kpi, object_type, value, units, "
    "user_id, location_id, ts, date_from, date_to, batch_id, updated_at"
)
# Columns whose change makes a resent element an update rather than "unchanged".
COMPARED = (
    "kpi",
    "object_type",
    "value",
    "units",
    "user_id",
    "location_id",
    "ts",
    "date_from",
    "date_to",
)
UPSERT_CONFLICT = (
    " ON CONFLICT (tenant_id, environment, type, context, element_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*COMPARED, "batch_id", "updated_at"))
    + ", revision = data_points.revision + 1 WHERE "
)

_BATCH_COLUMNS = (
    "id, tenant_id, environment, client_pk, endpoint, type, context, version, http_status, "
    "received, created, updated, unchanged, received_at, duration_ms, raw_body, "
    "body_truncated, errors, message, idempotency_key"
)
_RECORD_COLUMNS = (
    "id, tenant_id, environment, client_pk, endpoint, http_status, received_at, "
    "duration_ms, raw_body, body_truncated, errors, message"
)


def insert_client_sql(mark: Mark) -> str:
    return (
        "INSERT INTO clients (tenant_id, environment, name, client_id, secret_hash, scopes, "
        f"rate_limit, token_ttl, tokens_valid_after, created_at) VALUES {_values(mark, 10)}"
    )


def client_values(new: NewClient) -> tuple[Any, ...]:
    """The ``clients`` row of a new client, in ``insert_client_sql`` order."""
    return (
        new.tenant_id,
        new.environment.value,
        new.name,
        new.client_id,
        new.secret_hash,
        " ".join(new.scopes),
        new.rate_limit,
        new.token_ttl,
        0,
        new.created_at,
    )


def _values(mark: Mark, count: int) -> str:
    return "(" + ", ".join(mark(i) for i in range(1, count + 1)) + ")"


def insert_batch_sql(mark: Mark) -> str:
    return f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES {_values(mark, 20)}"


def insert_record_sql(mark: Mark) -> str:
    return f"INSERT INTO batches ({_RECORD_COLUMNS}) VALUES {_values(mark, 12)}"


def batch_values(write: BatchWrite, counts: BatchCounts) -> tuple[Any, ...]:
    """The ``batches`` row of an accepted batch, in ``insert_batch_sql`` order."""
    batch = write.batch
    return (
        write.batch_id,
        write.tenant_id,
        write.environment.value,
        write.client_pk,
        "kpi",
        batch.type,
        batch.context,
        batch.version,
        200,
        counts.received,
        counts.created,
        counts.updated,
        counts.unchanged,
        write.received_at,
        (time.time() - write.received_at) * 1000,
        write.raw_body,
        False,
        None,
        None,
        write.idempotency_key,
    )


def record_values(r: RequestRecord) -> tuple[Any, ...]:
    """The ``batches`` row of a rejected request, in ``insert_record_sql`` order."""
    return (
        r.batch_id,
        r.tenant_id,
        r.environment.value if r.environment else None,
        r.client_pk,
        r.endpoint,
        r.http_status,
        r.received_at,
        r.duration_ms,
        r.raw_body,
        r.body_truncated,
        json.dumps(r.errors) if r.errors else None,
        r.message,
    )


def client_from_row(row: Any) -> Client:
    """A ``Client`` from a row selected with ``CLIENT_COLUMNS``."""
    return Client(
        id=row[0],
        tenant_id=row[1],
        environment=Environment(row[2]),
        name=row[3],
        client_id=row[4],
        secret_hash=bytes(row[5]),
        old_secret_hash=bytes(row[6]) if row[6] is not None else None,
        scopes=tuple(row[7].split()),
        rate_limit=row[8],
        token_ttl=row[9],
        revoked_at=row[10],
        tokens_valid_after=row[11],
        created_at=row[12],
        last_used_at=row[13],
    )
