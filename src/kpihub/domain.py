"""The nouns of kpihub, free of HTTP and SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Environment(StrEnum):
    TESTING = "testing"
    PRODUCTION = "production"


SCOPE_WRITE = "kpi:write"
SCOPE_READ = "kpi:read"
ALL_SCOPES: tuple[str, ...] = (SCOPE_WRITE, SCOPE_READ)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    timezone: str
    created_at: int
    retention_days: int | None = None  # None: data is kept forever


@dataclass(frozen=True, slots=True)
class Client:
    """An OAuth client: one tenant, one environment."""

    id: int
    tenant_id: int
    environment: Environment
    name: str
    client_id: str
    secret_hash: bytes
    old_secret_hash: bytes | None
    scopes: tuple[str, ...]
    rate_limit: int | None  # requests per minute; None = the server default
    token_ttl: int | None  # seconds; None = the server default
    revoked_at: int | None
    tokens_valid_after: int  # tokens issued before this epoch second are void
    created_at: int
    last_used_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class BearerContext:
    """What one authenticated API request needs from the store, read in one go."""

    tenant: Tenant
    client: Client | None  # None: no such client on this tenant
    token_revoked: bool


@dataclass(frozen=True, slots=True)
class NewClient:
    """What the store needs to create a client (the secret only as its hash)."""

    tenant_id: int
    environment: Environment
    name: str
    client_id: str
    secret_hash: bytes
    scopes: tuple[str, ...]
    rate_limit: int | None
    token_ttl: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Integration:
    id: int
    tenant_id: int
    identifier: str
    created_at: int


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_pem: bytes
    public_jwk: dict[str, str]
    created_at: int
    retired_at: int | None = None


class DataPoint(NamedTuple):
    """One element of a batch, validated and normalised.

    Identity is (tenant, environment, type, context, element_id). Immutable, like the
    other nouns, but a NamedTuple rather than a frozen dataclass: validation builds one
    per ingested element, and a frozen dataclass takes about 1.1 µs to build (one
    ``object.__setattr__`` per field), a NamedTuple 0.3.
    """

    element_id: str
    kpi: str
    object_type: str
    value: float
    units: str | None
    timestamp: int  # epoch seconds UTC
    date_from: int | None
    date_to: int | None
    user_id: str | None
    location_id: str | None


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """A validated request body."""

    type: str
    version: str
    context: str
    points: list[DataPoint]


@dataclass(slots=True)
class BatchWrite:
    """Everything the store needs to apply one accepted batch atomically."""

    batch_id: str
    tenant_id: int
    environment: Environment
    client_pk: int
    batch: ParsedBatch
    raw_body: bytes  # compressed
    received_at: float
    idempotency_key: str | None = None
    request_hash: str | None = None
    idempotency_since: int = 0  # keys recorded before this epoch second have expired


@dataclass(frozen=True, slots=True)
class BatchCounts:
    received: int
    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A rejected (or otherwise notable) request kept for the integration debugger."""

    batch_id: str
    tenant_id: int
    environment: Environment | None
    client_pk: int | None
    endpoint: str
    http_status: int
    received_at: float
    duration_ms: float
    raw_body: bytes  # compressed, possibly truncated
    body_truncated: bool
    errors: dict[str, list[str]] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response kept under an Idempotency-Key."""

    request_hash: str
    status: int
    body: bytes


# -- reading back ---------------------------------------------------------------------

AGGREGATES: tuple[str, ...] = ("sum", "avg", "min", "max", "count", "last")
RANK_BY: tuple[str, ...] = ("user_id", "location_id")
GROUP_BY: tuple[str, ...] = ("user_id", "location_id", "kpi")


@dataclass(frozen=True, slots=True)
class PointFilter:
    """Which data points a read selects, within one tenant and environment.

    ``start``/``end`` are epoch seconds of a half-open range ``[start, end)``. With
    ``overlap`` the range selects points whose ``[date_from, date_to]`` (their
    timestamp when absent) overlaps it; otherwise their ``timestamp`` falls in it.
    """

    tenant_id: int
    environment: Environment
    type: str | None = None
    context: str | None = None
    kpis: tuple[str, ...] = ()
    user_id: str | None = None
    location_id: str | None = None
    start: int | None = None
    end: int | None = None
    overlap: bool = False


@dataclass(frozen=True, slots=True)
class PointKey:
    """Where a page of points ends: the sort key of its last row."""

    timestamp: int
    type: str
    context: str
    element_id: str


@dataclass(frozen=True, slots=True)
class StoredPoint:
    type: str
    context: str
    element_id: str
    kpi: str
    object_type: str
    value: float
    units: str | None
    user_id: str | None
    location_id: str | None
    timestamp: int
    date_from: int | None
    date_to: int | None

    @property
    def key(self) -> PointKey:
        return PointKey(self.timestamp, self.type, self.context, self.element_id)


class SlotAggregate(NamedTuple):
    """Partial aggregates of the points of one group in ``[slot, slot + slot size)``.

    ``last`` is the value of the slot's last point (greatest timestamp, then greatest
    element id, type and context), or None when it was not asked for. A named tuple,
    not a dataclass: a series read makes one per slot row (thousands), and a tuple is
    made from the row in a fraction of the time.
    """

    group: str | None
    slot: int
    sum: float
    points: int  # how many points (not ``count``: a tuple's method)
    min: float
    max: float
    last: float | None


@dataclass(frozen=True, slots=True)
class RankedEntry:
    rank: int
    id: str
    value: float
    count: int


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    type: str
    context: str
    kpi: str
    units: tuple[str, ...]
    points: int
    first_timestamp: int
    last_timestamp: int
    users: int
    locations: int


# -- the dashboard -----------------------------------------------------------------------


class Role(StrEnum):
    ADMIN = "admin"  # everything, credentials included
    VIEWER = "viewer"  # data and the debugger, no credentials


@dataclass(frozen=True, slots=True)
class DashboardUser:
    """A person who signs in to a tenant's dashboard (not an OAuth client)."""

    id: int
    tenant_id: int
    email: str
    password_hash: str  # argon2id, PHC string
    role: Role
    created_at: int
    last_login_at: int | None
    sessions_valid_after: int  # sessions issued before this epoch second are void


@dataclass(frozen=True, slots=True)
class NewDashboardUser:
    tenant_id: int
    email: str
    password_hash: str
    role: Role
    created_at: int


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which received requests the debugger lists: newest first, ``limit`` of them."""

    tenant_id: int
    environment: Environment
    status: int | None = None  # one HTTP status
    rejected: bool | None = None  # True: refused ones only; False: accepted only
    before: float | None = None  # received before this epoch time (the next page)
    limit: int = 100


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """One row of ``batches`` (an accepted batch or a refused request), without its body."""

    batch_id: str
    environment: Environment | None
    client_pk: int | None
    endpoint: str
    type: str | None
    context: str | None
    http_status: int
    received: int
    created: int
    updated: int
    unchanged: int
    received_at: float
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class RequestDetail:
    summary: RequestSummary
    raw_body: bytes | None  # zlib-compressed, as stored
    body_truncated: bool
    errors: dict[str, list[str]]
    message: str | None


@dataclass(frozen=True, slots=True)
class HourlyTraffic:
    """Requests to the ingestion endpoint in one hour (``hour`` = its epoch start)."""

    hour: int
    accepted: int
    rejected: int
    elements: int  # elements received in accepted batches


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """What a retention purge deleted (or, on a dry run, would delete) of one tenant."""

    points: int  # data points whose timestamp is before the cutoff
    batches: int  # requests (accepted batches and refusals) received before the cutoff
