"""The storage port: what the rest of kpihub asks of a store.

One implementation per backend (``sqlite.py``, ``postgres.py``); the same test suite runs on each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kpihub import domain
from kpihub.storage._sql import PURGE_CHUNK

RenderAck = Callable[[domain.BatchCounts], bytes]
"""Builds the 200 body from the counts; runs inside the batch's transaction so an
Idempotency-Key record holds exactly what the client was sent. Picklable (a module-level
function or a ``functools.partial`` of one): SQLite's writer process runs it."""


class StoreObserver(Protocol):
    """What a store reports as it works (the app's metrics implement it).

    Called where the store learns of the work: for SQLite, on the event loop when the
    writer process's answer arrives. Keep it cheap and thread-safe.
    """

    def store_committed(self, backend: str, seconds: float) -> None:
        """A write transaction committed ``seconds`` after it began."""

    def store_failed(self, backend: str, error: BaseException) -> None:
        """The store could not be reached, read or written; ``error`` is the cause."""


class NullObserver:
    """Reports nowhere: the CLI's and the tests' stores."""

    def store_committed(self, backend: str, seconds: float) -> None:
        pass

    def store_failed(self, backend: str, error: BaseException) -> None:
        pass


class Storage(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the store cannot answer."""

    # Tenants and integration identifiers.
    async def create_tenant(self, name: str, timezone: str, now: int) -> domain.Tenant: ...
    async def get_tenant(self, name: str) -> domain.Tenant | None: ...
    async def list_tenants(self) -> list[domain.Tenant]: ...
    async def set_retention(self, tenant_id: int, days: int | None) -> domain.Tenant:
        """Keep ``days`` days of the tenant's data (None: forever); ``NotFound`` if no tenant."""

    async def create_integration(
        self, tenant_id: int, identifier: str, now: int
    ) -> domain.Integration: ...
    async def list_integrations(self, tenant_id: int) -> list[domain.Integration]: ...
    async def integration_exists(self, tenant_id: int, identifier: str) -> bool: ...

    # OAuth clients.
    async def create_client(self, new: domain.NewClient) -> domain.Client: ...
    async def get_client(self, client_id: str) -> domain.Client | None: ...
    async def list_clients(self, tenant_id: int) -> list[domain.Client]: ...
    async def rotate_secret(self, client_id: str, new_hash: bytes) -> domain.Client: ...
    async def retire_old_secret(self, client_id: str) -> domain.Client: ...
    async def revoke_client(self, client_id: str, now: int) -> domain.Client: ...
    async def set_rate_limit(self, client_id: str, rate_limit: int | None) -> domain.Client: ...
    async def touch_client(self, client_pk: int, now: int) -> None: ...

    # Signing keys and token revocation.
    async def signing_keys(self) -> list[domain.SigningKey]: ...
    async def add_signing_key(self, key: domain.SigningKey) -> None: ...
    async def retire_signing_key(self, kid: str, now: int) -> domain.SigningKey:
        """Stop using and accepting ``kid``; ``NotFound`` when there is no such key."""

    async def revoke_token(self, jti: str, client_pk: int, expires_at: int) -> None: ...
    async def is_token_revoked(self, jti: str) -> bool: ...
    async def bearer_context(
        self, tenant_name: str, client_id: str, jti: str
    ) -> domain.BearerContext | None:
        """The tenant, its client ``client_id`` and whether ``jti`` is revoked, in one read;
        None when there is no tenant ``tenant_name``."""

    # Ingestion.
    async def ingest(
        self, write: domain.BatchWrite, render: RenderAck
    ) -> tuple[domain.BatchCounts, bytes] | None:
        """Apply a batch atomically and durably; return its counts and the rendered body.

        None when the batch's Idempotency-Key was already used (a concurrent request
        won): nothing is written and the caller replays the stored response."""

    async def idempotent_response(
        self, client_pk: int, key: str, since: int
    ) -> domain.StoredResponse | None:
        """The response stored under ``key`` no earlier than ``since`` (epoch seconds)."""

    async def purge_expired(self, idempotency_before: int, now: int) -> int:
        """Delete idempotency records and token revocations that can no longer matter."""

    async def purge_before(
        self, tenant_id: int, before: int, *, dry_run: bool = False, chunk: int = PURGE_CHUNK
    ) -> domain.PurgeCounts:
        """Delete the tenant's data points whose timestamp is before ``before`` (epoch
        seconds) and its requests received before it, at most ``chunk`` rows per
        transaction; with ``dry_run``, only count them."""

    async def record_request(self, record: domain.RequestRecord) -> None: ...
    async def count_points(self, tenant_id: int, environment: domain.Environment) -> int: ...

    # Reads (the query API). Every read is confined to ``flt``'s tenant and environment.
    async def find_points(
        self,
        flt: domain.PointFilter,
        *,
        after: domain.PointKey | None,
        descending: bool,
        limit: int,
    ) -> list[domain.StoredPoint]:
        """Up to ``limit`` points ordered by (timestamp, type, context, element id),
        strictly after ``after`` in that order (before it when ``descending``)."""

    async def slot_aggregates(
        self, flt: domain.PointFilter, *, slot: int, group_by: str | None, with_last: bool
    ) -> list[domain.SlotAggregate]:
        """Partial aggregates per group (``group_by`` column, or one group) and per
        ``slot``-second slot aligned on the epoch (``ts - ts % slot``)."""

    async def leaderboard(
        self, flt: domain.PointFilter, *, by: str, agg: str, limit: int
    ) -> list[domain.RankedEntry]:
        """The ``limit`` best ids of column ``by``: value desc (competition rank), id asc."""

    async def catalog(
        self, tenant_id: int, environment: domain.Environment
    ) -> list[domain.CatalogEntry]:
        """Every (type, context, kpi) stored, ordered by them. It reads every point."""

    async def kpi_names(
        self, tenant_id: int, environment: domain.Environment
    ) -> list[tuple[str, str]]:
        """Every (context, kpi) that holds a point, ordered by them: a few index seeks,
        whatever the number of points (what a picker lists; ``catalog`` counts them)."""

    # The dashboard: its users, and what it shows of the ingestion endpoint's requests.
    async def create_user(self, new: domain.NewDashboardUser) -> domain.DashboardUser:
        """``Conflict`` when the tenant already has a user with that email."""

    async def get_user(self, tenant_id: int, email: str) -> domain.DashboardUser | None: ...
    async def get_user_by_id(self, user_pk: int) -> domain.DashboardUser | None: ...
    async def list_users(self, tenant_id: int) -> list[domain.DashboardUser]: ...
    async def record_login(self, user_pk: int, now: int) -> None: ...
    async def end_sessions(self, user_pk: int, now: int) -> None:
        """Void every session of the user issued up to ``now`` (sign-out)."""

    async def list_requests(self, flt: domain.RequestFilter) -> list[domain.RequestSummary]:
        """The latest requests of an environment (and those refused before
        authentication, which have none), newest first."""

    async def get_request(self, tenant_id: int, batch_id: str) -> domain.RequestDetail | None: ...
    async def hourly_traffic(
        self, tenant_id: int, environment: domain.Environment, since: int
    ) -> list[domain.HourlyTraffic]: ...
    async def last_accepted(
        self, tenant_id: int, environment: domain.Environment
    ) -> dict[int, float]:
        """client pk -> when its latest accepted batch was received."""
