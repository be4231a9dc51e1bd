"""``POST /api/external/{api_version}/kpi``: authenticate, read, validate, store, ACK."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kpihub.domain import SCOPE_WRITE, BatchWrite, RequestRecord
from kpihub.errors import (
    KpihubError,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    UnknownApiVersion,
    UnsupportedMediaType,
    ValidationFailed,
)
from kpihub.http.body import decode_json, media_type, read_body
from kpihub.http.errors import error_response
from kpihub.http.responses import raw_json
from kpihub.ingest import ack
from kpihub.ingest.validate import validate_batch
from kpihub.oauth.bearer import Principal, authenticate
from kpihub.ratelimit import rate_limit_headers
from kpihub.services import Services, services
from kpihub.settings import SUPPORTED_API_VERSIONS

ENDPOINT = "kpi"
log = logging.getLogger("kpihub.ingest")
_MAX_IDEMPOTENCY_KEY = 255


def new_batch_id() -> str:
    """Time-ordered and unique: 48 bits of milliseconds, 64 random bits."""
    return f"{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


def _check_media_type(request: Request) -> None:
    kind = media_type(request)
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Content-Type '{kind or '(none)'}' is not supported on this endpoint. "
            "Send the body as JSON with 'Content-Type: application/json'."
        )


def _count_elements(doc: object) -> int:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return 0
    return sum(
        len(entry["elements"])
        for entry in doc["data"]
        if isinstance(entry, dict) and isinstance(entry.get("elements"), list)
    )


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not key or len(key) > _MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ValidationFailed(
            {
                "Idempotency-Key": [
                    f"The Idempotency-Key header {key[:40]!r} must be 1 to {_MAX_IDEMPOTENCY_KEY} "
                    "printable characters; a UUID is a good choice."
                ]
            }
        )
    return key


async def _replay(
    svc: Services, principal: Principal, key: str, request_hash: str, headers: dict[str, str]
) -> Response | None:
    since = int(time.time()) - svc.settings.idempotency_ttl
    stored = await svc.storage.idempotent_response(principal.client.id, key, since)
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise ValidationFailed(
            {
                "Idempotency-Key": [
                    f"The Idempotency-Key {key!r} was already used with a different request body. "
                    "Use a new key for new data; reuse a key only to retry the same request."
                ]
            }
        )
    return raw_json(stored.body, stored.status, {**headers, "Idempotent-Replayed": "true"})


async def _ingest(request: Request, svc: Services, received_at: float) -> Response:
    version = request.path_params["api_version"]
    if version not in SUPPORTED_API_VERSIONS:
        raise UnknownApiVersion(version, SUPPORTED_API_VERSIONS)
    principal = await authenticate(svc, request, SCOPE_WRITE)
    request.state.principal = principal
    headers = rate_limit_headers(request.state.ratelimit, limited=False)
    _check_media_type(request)
    key = _idempotency_key(request)
    settings = svc.settings
    body = await read_body(request, settings.max_body_bytes, settings.body_read_timeout)
    request.state.body = body
    request_hash = hashlib.sha256(body).hexdigest() if key else None
    if key and request_hash:
        replay = await _replay(svc, principal, key, request_hash, headers)
        if replay is not None:
            return replay
    doc = decode_json(body)
    elements = _count_elements(doc)
    request.state.elements = elements
    if elements > settings.max_elements:
        raise PayloadTooLarge(
            f"The request has {elements} elements; the limit is {settings.max_elements} per "
            "request. Split the data into several requests.",
            limit=settings.max_elements,
        )
    tenant = principal.tenant
    errors: dict[str, list[str]] = {}
    try:
        batch = validate_batch(
            doc, tz=svc.zone(tenant.timezone), max_elements=settings.max_elements
        )
    except ValidationFailed as exc:
        errors = exc.errors
        batch = None
    type_ = doc.get("type") if isinstance(doc, dict) else None
    registered = (
        not isinstance(type_, str)
        or not type_
        or "type" in errors
        or await svc.integration_registered(tenant.id, type_)
    )
    if not registered:
        errors = {
            "type": [
                f"The type {str(type_)[:60]!r} is not an integration identifier registered for "
                f"tenant '{tenant.name}'. Use the identifier you were given, or register "
                "it with 'kpihub integration create'."
            ],
            **errors,
        }
    if errors or batch is None:
        raise ValidationFailed(errors)
    batch_id = new_batch_id()
    request.state.batch_id = batch_id
    write = BatchWrite(
        batch_id=batch_id,
        tenant_id=tenant.id,
        environment=principal.environment,
        client_pk=principal.client.id,
        batch=batch,
        raw_body=zlib.compress(body, 1),
        received_at=received_at,
        idempotency_key=key,
        request_hash=request_hash,
        idempotency_since=int(received_at) - settings.idempotency_ttl,
    )
    result = await svc.storage.ingest(write, ack.render(batch_id))
    if result is None:
        assert key is not None and request_hash is not None
        replay = await _replay(svc, principal, key, request_hash, headers)
        assert replay is not None
        return replay
    counts, answer = result
    svc.metrics.batch_elements.observe(counts.received)
    svc.metrics.count_ingested(counts.created, counts.updated, counts.unchanged)
    return raw_json(answer, 200, headers)


async def ingest_kpi(request: Request) -> Response:
    svc = services(request)
    received_at = time.time()
    try:
        return await _ingest(request, svc, received_at)
    except KpihubError as exc:
        response = error_response(request, exc)
        svc.metrics.batches_rejected.labels(str(response.status_code)).inc()
        await _record_rejection(request, svc, exc, response.status_code, received_at)
        return response


async def _record_rejection(
    request: Request, svc: Services, exc: KpihubError, status: int, received_at: float
) -> None:
    """Keep the rejected request for the integration debugger.

    Throttled requests are not kept: a client over its limit would otherwise turn
    every refused request into a write.
    """
    tenant = getattr(request.state, "tenant", None)
    # A 503 is not kept either: the store it would go to is the one that failed (or,
    # Redis down with the closed policy, every refusal would become a write).
    if tenant is None or isinstance(exc, RateLimited | StoreUnavailable):
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    body: bytes = getattr(request.state, "body", b"")
    keep = svc.settings.debug_body_bytes
    batch_id = getattr(request.state, "batch_id", None) or new_batch_id()
    request.state.batch_id = batch_id
    record = RequestRecord(
        batch_id=batch_id,
        tenant_id=tenant.id,
        environment=principal.environment if principal else None,
        client_pk=principal.client.id if principal else None,
        endpoint=ENDPOINT,
        http_status=status,
        received_at=received_at,
        duration_ms=(time.time() - received_at) * 1000,
        raw_body=zlib.compress(body[:keep], 1),
        body_truncated=len(body) > keep,
        errors=exc.errors if isinstance(exc, ValidationFailed) else {},
        message=exc.message,
    )
    try:
        await svc.storage.record_request(record)
    except StoreUnavailable as failure:
        # The client must still learn why its request was refused.
        log.warning("rejected request not recorded: %s", failure.message)


routes = [Route("/api/external/{api_version}/kpi", ingest_kpi, methods=["POST"])]
