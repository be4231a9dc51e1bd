"""Prometheus metrics: one registry per app, served at ``GET /metrics``.

Each app gets its own ``CollectorRegistry`` rather than the process-global one, so
several apps (tests, or a future multi-app process) never share or clash on series.
The HTTP counters come from a pure-ASGI middleware: Starlette's ``BaseHTTPMiddleware``
costs a task and a stream per request.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "(unmatched)"
"""The ``route`` label of requests no route matched: raw paths would be unbounded."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# Elements per accepted batch: up to the default limit of 10,000.
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)


class Metrics:
    """The registry and every instrument kpihub updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "kpihub_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "kpihub_http_request_duration_seconds",
            "Time from receiving a request to the end of its response, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.elements_ingested = Counter(
            "kpihub_elements_ingested",
            "Elements of accepted batches, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.batches_rejected = Counter(
            "kpihub_batches_rejected",
            "Requests to the ingestion endpoint that were refused, by HTTP status.",
            ["status"],
            registry=r,
        )
        self.ratelimit_fallbacks = Counter(
            "kpihub_ratelimit_fallbacks",
            "Rate-limit decisions taken without the shared store (Redis unreachable).",
            registry=r,
        )
        self.ratelimited = Counter(
            "kpihub_ratelimited",
            "Requests refused by a rate limit, by limit name.",
            ["limit"],
            registry=r,
        )
        self.batch_elements = Histogram(
            "kpihub_batch_elements",
            "Elements per accepted batch.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.store_commit_duration = Histogram(
            "kpihub_store_commit_duration_seconds",
            "Write transactions, from BEGIN to COMMIT returned (the data durable), by backend. "
            "SQLite: one group commit (every write queued meanwhile); PostgreSQL: one batch "
            "(or housekeeping) transaction.",
            ["backend"],
            buckets=_COMMIT_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "kpihub_store_errors",
            "Store operations that failed because the store could not be reached, read or "
            "written (answered 503), by backend and error type.",
            ["backend", "error"],
            registry=r,
        )
        self.auth_failures = Counter(
            "kpihub_auth_failures",
            "Refused authentications, by credential (bearer: API access tokens; "
            "client_secret: /oauth/* client authentication; dashboard: sign-in) and reason.",
            ["credential", "reason"],
            registry=r,
        )
        # Children bound once: ``labels()`` costs microseconds, on every request.
        outcomes = ("created", "updated", "unchanged")
        self._ingested = tuple(self.elements_ingested.labels(outcome) for outcome in outcomes)
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._commits: dict[str, Any] = {}

    def count_ingested(self, created: int, updated: int, unchanged: int) -> None:
        """An accepted batch's elements, by outcome."""
        c, u, n = self._ingested
        c.inc(created)
        u.inc(updated)
        n.inc(unchanged)

    def count_http(self, template: str, method: str, status: int, seconds: float) -> None:
        """One answered request (``template`` and ``method`` come from bounded sets)."""
        key = (template, method, status)
        children = self._http.get(key)
        if children is None:
            children = self._http[key] = (
                self.http_requests.labels(template, method, str(status)),
                self.http_duration.labels(template),
            )
        children[0].inc()
        children[1].observe(seconds)

    # The storage's StoreObserver (kpihub.storage.base): called by the backends (for
    # SQLite, on the event loop, with what the writer process reported).

    def store_committed(self, backend: str, seconds: float) -> None:
        child = self._commits.get(backend)
        if child is None:
            child = self._commits[backend] = self.store_commit_duration.labels(backend)
        child.observe(seconds)

    def store_failed(self, backend: str, error: BaseException) -> None:
        self.store_errors.labels(backend, type(error).__name__).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


class MetricsMiddleware:
    """Count and time every HTTP request by route template (``/api/external/{api_version}/kpi``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped to the server

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router writes the matched route into this same scope dict.
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.count_http(template, method, status, time.perf_counter() - started)
