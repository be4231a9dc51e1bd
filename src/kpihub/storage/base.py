"""The storage port: what the rest of kpihub asks of a store.

One implementation per backend (``sqlite.py`` now); the same test suite runs on each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kpihub.domain import (
    BatchCounts,
    BatchWrite,
    Client,
    Environment,
    Integration,
    NewClient,
    RequestRecord,
    SigningKey,
    StoredResponse,
    Tenant,
)

RenderAck = Callable[[BatchCounts], bytes]
"""Builds the 200 body from the counts; runs inside the batch's transaction so an
Idempotency-Key record holds exactly what the client was sent."""


class Storage(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the store cannot answer."""

    # Tenants and integration identifiers.
    async def create_tenant(self, name: str, timezone: str, now: int) -> Tenant: ...
    async def get_tenant(self, name: str) -> Tenant | None: ...
    async def list_tenants(self) -> list[Tenant]: ...
    async def create_integration(
        self, tenant_id: int, identifier: str, now: int
    ) -> Integration: ...
    async def list_integrations(self, tenant_id: int) -> list[Integration]: ...
    async def integration_exists(self, tenant_id: int, identifier: str) -> bool: ...

    # OAuth clients.
    async def create_client(self, new: NewClient) -> Client: ...
    async def get_client(self, client_id: str) -> Client | None: ...
    async def list_clients(self, tenant_id: int) -> list[Client]: ...
    async def rotate_secret(self, client_id: str, new_hash: bytes) -> Client: ...
    async def retire_old_secret(self, client_id: str) -> Client: ...
    async def revoke_client(self, client_id: str, now: int) -> Client: ...
    async def set_rate_limit(self, client_id: str, rate_limit: int | None) -> Client: ...
    async def touch_client(self, client_pk: int, now: int) -> None: ...

    # Signing keys and token revocation.
    async def signing_keys(self) -> list[SigningKey]: ...
    async def add_signing_key(self, key: SigningKey) -> None: ...
    async def retire_signing_key(self, kid: str, now: int) -> SigningKey:
        """Stop using and accepting ``kid``; ``NotFound`` when there is no such key."""

    async def revoke_token(self, jti: str, client_pk: int, expires_at: int) -> None: ...
    async def is_token_revoked(self, jti: str) -> bool: ...

    # Ingestion.
    async def ingest(
        self, write: BatchWrite, render: RenderAck
    ) -> tuple[BatchCounts, bytes] | None:
        """Apply a batch atomically and durably; return its counts and the rendered body.

        None when the batch's Idempotency-Key was already used (a concurrent request
        won): nothing is written and the caller replays the stored response."""

    async def idempotent_response(
        self, client_pk: int, key: str, since: int
    ) -> StoredResponse | None:
        """The response stored under ``key`` no earlier than ``since`` (epoch seconds)."""

    async def purge_expired(self, idempotency_before: int, now: int) -> int:
        """Delete idempotency records and token revocations that can no longer matter."""

    async def record_request(self, record: RequestRecord) -> None: ...
    async def count_points(self, tenant_id: int, environment: Environment) -> int: ...
