"""The request id (``X-Request-ID``) and one access-log line per request.

A pure ASGI middleware, the outermost one (see ``kpihub.app``), so it sees every
response, the 500s of unhandled errors included, and adds ``X-Request-ID`` to each.
The id is the caller's when it is sane (1 to 128 letters, digits and ``-_.:=+/@``; a
proxy's or a vendor's correlation id), else a new random one. It is bound into the
logging context, so every line logged while the request runs carries it.

The access line is logged after the response (``kpihub.access`` at info, through
``kpihub.logs.access_logger``; none until ``configure_logging`` ran), with what the
routes noted on ``request.state`` (tenant, client, elements, batch id, error class,
authentication failure). Never a header, a token, a secret or a query string.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from kpihub.logs import access_logger
from kpihub.metrics import UNMATCHED_ROUTE

HEADER = b"x-request-id"
MAX_REQUEST_ID = 128
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:=+/@-]{1,%d}" % MAX_REQUEST_ID)
_MAX_PATH = 200  # characters of the path in a log line: paths are the caller's input


def accepted_request_id(value: bytes) -> str | None:
    """``value`` when it is a sane request id to echo and log; None otherwise."""
    return value.decode("ascii") if _SAFE_ID.fullmatch(value) else None


def new_request_id() -> str:
    """32 random hex digits (128 bits, as a UUID without its dashes)."""
    return os.urandom(16).hex()


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, *, trust_forwarded_headers: bool = False) -> None:
        self.app = app
        self.trust_forwarded = trust_forwarded_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        forwarded_for = None
        for name, value in scope["headers"]:
            if name == HEADER:
                request_id = accepted_request_id(value)
            elif name == b"x-forwarded-for":
                forwarded_for = value
        if request_id is None:
            request_id = new_request_id()
        # Request.state reads and writes this same dict: the routes' notes land here.
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        echoed = (HEADER, request_id.encode("ascii"))
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        tokens = bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # The binding stays: the server logs the escaping error after this, and that
            # line should carry the request id too. Each request runs in a task of its
            # own, so the binding ends with it anyway.
            self._log(scope, state, status, time.perf_counter() - started, forwarded_for)
            raise
        self._log(scope, state, status, time.perf_counter() - started, forwarded_for)
        reset_contextvars(**tokens)

    def _log(
        self,
        scope: Scope,
        state: dict[str, Any],
        status: int,
        seconds: float,
        forwarded_for: bytes | None,
    ) -> None:
        access = access_logger()
        if access is None or not access.is_enabled_for(logging.INFO):
            return
        route: Any = scope.get("route")
        peer = scope.get("client")
        remote = peer[0] if peer else None
        if self.trust_forwarded and forwarded_for:
            remote = forwarded_for.split(b",", 1)[0].strip()[:100].decode("latin-1")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"][:_MAX_PATH],
            "route": getattr(route, "path", None) or UNMATCHED_ROUTE,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "remote": remote,
        }
        tenant = state.get("tenant")
        if tenant is not None:
            fields["tenant"] = tenant.name
        client = state.get("client")  # set once the client authenticated
        if client is not None:
            fields["client_id"] = client.client_id
            fields["environment"] = client.environment.value
        for key in ("elements", "batch_id", "error", "auth_failure"):
            value = state.get(key)
            if value is not None:
                fields[key] = value
        access.info("request", **fields)
