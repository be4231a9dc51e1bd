"""``/healthz`` (the process answers) and ``/readyz`` (the store answers too)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kpihub import __version__
from kpihub.errors import StoreUnavailable
from kpihub.http.responses import JsonResponse
from kpihub.services import services


async def healthz(request: Request) -> Response:
    svc = services(request)
    return JsonResponse(
        {"status": "ok", "version": __version__, "uptime_s": round(time.time() - svc.started_at, 1)}
    )


async def readyz(request: Request) -> Response:
    try:
        await services(request).storage.ping()
    except StoreUnavailable as exc:
        return JsonResponse(
            {"status": "unavailable", "store": exc.message}, 503, {"Retry-After": "5"}
        )
    return JsonResponse({"status": "ready", "store": "ok"})


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
