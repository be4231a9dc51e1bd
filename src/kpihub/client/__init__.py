"""The kpihub client SDK: what a vendor's system imports to push KPI data.

It depends on httpx and stamina only (and the server's pure validation module);
nothing of the server — web framework, database drivers, Redis — is imported.

::

    from kpihub.client import KpiClient

    with KpiClient("https://acme.example.com", CLIENT_ID, CLIENT_SECRET) as kpi:
        ack = kpi.send(type="acme-pos", version="1.0.0", context="sales", data=[
            {"user_id": "123", "elements": [
                {"id": 1, "kpi": "device_sales", "object_type": "number",
                 "value": "100", "timestamp": 1568120963},
            ]},
        ])
    print(ack.batch_id, ack.created, ack.updated, ack.unchanged)

Tokens are fetched, cached and refreshed; large data is split by element count
and bytes and gzipped; requests are paced below the server's rate limit and
retried (network errors, timeouts, 429, 5xx) with the same ``Idempotency-Key``;
validation errors (422) raise :class:`ValidationError` with the server's field
errors and are never retried.
"""

from kpihub.client._async import AsyncKpiClient
from kpihub.client._batching import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    Row,
    make_batches,
    rows_of,
)
from kpihub.client._errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    KpiConnectionError,
    KpiError,
    LocalValidationError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from kpihub.client._inputs import CSV_COLUMNS, Input, read_input
from kpihub.client._models import Ack, Batch, Stats
from kpihub.client._options import ClientOptions
from kpihub.client._outbox import Outbox
from kpihub.client._sync import KpiClient
from kpihub.client._throttle import Throttle
from kpihub.client._tokens import token_claims
from kpihub.client._validation import Problem, check_batches, validate

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "Ack",
    "ApiError",
    "AsyncKpiClient",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "ClientOptions",
    "Input",
    "KpiClient",
    "KpiConnectionError",
    "KpiError",
    "LocalValidationError",
    "NotFoundError",
    "Outbox",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Problem",
    "RateLimitError",
    "RequestTimeoutError",
    "Row",
    "ServerError",
    "Stats",
    "Throttle",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "check_batches",
    "make_batches",
    "read_input",
    "rows_of",
    "token_claims",
    "validate",
]
