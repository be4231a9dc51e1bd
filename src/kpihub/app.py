"""The ASGI application: ``create_app(settings)`` is the one factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp

from kpihub import health, openapi, retention
from kpihub.errors import KpihubError
from kpihub.http.errors import (
    http_exception_handler,
    kpihub_error_handler,
    unhandled_error_handler,
)
from kpihub.http.request_log import RequestLogMiddleware
from kpihub.ingest import routes as ingest_routes
from kpihub.logs import configure_logging
from kpihub.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from kpihub.oauth import routes as oauth_routes
from kpihub.oauth.keys import load_signer
from kpihub.query import routes as query_routes
from kpihub.ratelimit import build_limiter
from kpihub.services import Services
from kpihub.settings import Settings
from kpihub.storage import open_storage
from kpihub.storage.migrate import ensure_schema
from kpihub.web import routes as web_routes

log = logging.getLogger("kpihub")


class KpihubApp(Starlette):
    """Starlette with the request log outside everything, its error middleware included,
    so the 500 answer of an unhandled error also carries ``X-Request-ID`` and is logged."""

    def __init__(self, *args: Any, trust_forwarded_headers: bool = False, **kwargs: Any) -> None:
        self._trust_forwarded_headers = trust_forwarded_headers
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return RequestLogMiddleware(
            super().build_middleware_stack(), trust_forwarded_headers=self._trust_forwarded_headers
        )


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; nothing is opened until the lifespan starts."""
    settings = settings or Settings()
    # Per app, not the process-global registry: several apps may live in one process.
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.auto_migrate:
            ensure_schema(settings.database_url)
        limiter = build_limiter(settings, metrics)  # connects on first use, not here
        storage = open_storage(settings, metrics)
        await storage.start()
        housekeeping: asyncio.Task[None] | None = None
        try:
            app.state.services = Services(
                settings=settings,
                storage=storage,
                limiter=limiter,
                signer=await load_signer(storage),
                server_key=settings.server_key(),
                metrics=metrics,
            )
            # Startup objects (modules, settings, keys) never die: freezing them keeps
            # them out of every later full collection, which would otherwise pause
            # all in-flight requests for milliseconds under load.
            gc.collect()
            gc.freeze()
            housekeeping = asyncio.create_task(_housekeeping(app.state.services))
            yield
        finally:
            if housekeeping is not None:
                housekeeping.cancel()
            await limiter.aclose()
            await storage.close()

    routes: list[Route] = [
        # The router tries routes in order: the one every pushed batch takes comes first.
        *ingest_routes.routes,
        *health.routes,
        *oauth_routes.routes,
        *query_routes.routes,
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *web_routes.routes,  # the dashboard (not in the OpenAPI document)
    ]
    app = KpihubApp(
        trust_forwarded_headers=settings.trust_forwarded_headers,
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={
            KpihubError: kpihub_error_handler,
            HTTPException: http_exception_handler,
            Exception: unhandled_error_handler,
        },
    )
    app.state.metrics = metrics
    return app


HOUSEKEEPING_EVERY = 300  # seconds


async def _housekeeping(svc: Services) -> None:
    """Drop expired idempotency records and token revocations, and data past each
    tenant's retention (``retention_purge``), now and then."""
    while True:
        now = int(time.time())
        try:
            await svc.storage.purge_expired(now - svc.settings.idempotency_ttl, now)
            if svc.settings.retention_purge:
                for r in await retention.purge(svc.storage, now=now):
                    if r.points or r.batches:
                        log.info(
                            "retention: deleted %d data points and %d requests of tenant %s "
                            "older than %d days",
                            r.points,
                            r.batches,
                            r.tenant,
                            r.days,
                        )
        except KpihubError as exc:
            log.warning("housekeeping skipped: %s", exc.message)
        await asyncio.sleep(HOUSEKEEPING_EVERY)


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (``kpihub serve``; each worker process runs it)."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)
