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
        for outcome in ("created", "updated", "unchanged"):
            self.elements_ingested.labels(outcome)

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
            m = self.metrics
            method = scope["method"] if scope["method"] in _METHODS else "other"
            m.http_requests.labels(template, method, str(status)).inc()
            m.http_duration.labels(template).observe(time.perf_counter() - started)
