"""The one place where errors become HTTP responses.

API routes answer Laravel-shaped bodies (``{"message", "errors"}``) because existing
integrations parse them; the OAuth endpoints answer RFC 6749 §5.2 bodies, with the
``message`` field Laravel Passport adds.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from kpihub.errors import (
    BodyTimeout,
    Conflict,
    InsufficientScope,
    InvalidInput,
    InvalidToken,
    KpihubError,
    LimitState,
    MalformedBody,
    MalformedJson,
    NotFound,
    OAuthError,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from kpihub.http.responses import JsonResponse
from kpihub.ratelimit import rate_limit_headers

log = logging.getLogger("kpihub.http")


# RFC 6750 §3: error_description is printable ASCII without '"' and '\\'. Descriptions
# may quote parts of an attacker's token (its kid, alg, typ), and a header value
# outside latin-1 cannot even be sent: it would turn a 401 into a 500.
_DESCRIPTION_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def _quote(text: str) -> str:
    return "".join(c if c in _DESCRIPTION_CHARS else "'" if c == '"' else "?" for c in text)


def _status(exc: KpihubError) -> int:
    if isinstance(exc, ValidationFailed | InvalidInput):
        return 422
    if isinstance(exc, MalformedBody):
        return 400
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, BodyTimeout):
        return 408
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidToken):
        # RFC 6750 §3.1: a malformed request (e.g. a token in the query string) is a 400.
        return 400 if exc.error == "invalid_request" else 401
    if isinstance(exc, InsufficientScope):
        return 403
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, StoreUnavailable):
        return 503
    if isinstance(exc, OAuthError):
        return exc.status
    return 400


def error_response(request: Request, exc: KpihubError) -> Response:
    """The response for a domain error, with the rate-limit headers already earned."""
    status = _status(exc)
    request.state.error = type(exc).__name__  # for the access log
    headers: dict[str, str] = {}
    state: LimitState | None = getattr(request.state, "ratelimit", None)
    if isinstance(exc, RateLimited):
        headers.update(rate_limit_headers(exc.state, limited=True))
    elif state is not None:
        headers.update(rate_limit_headers(state, limited=False))

    if isinstance(exc, OAuthError):
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
        if exc.error == "invalid_client" and exc.basic:
            headers["WWW-Authenticate"] = 'Basic realm="kpihub", charset="UTF-8"'
        body = {
            "error": exc.error,
            "error_description": exc.description,
            "message": exc.description,
        }
        return JsonResponse(body, status, headers)

    content: dict[str, object] = {"message": exc.message}
    if isinstance(exc, ValidationFailed):
        content["errors"] = exc.errors
    elif isinstance(exc, InvalidToken):
        challenge = 'Bearer realm="kpihub"'
        if exc.error is not None:
            challenge += f', error="{exc.error}", error_description="{_quote(exc.description)}"'
        headers["WWW-Authenticate"] = challenge
    elif isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = (
            f'Bearer realm="kpihub", error="insufficient_scope", scope="{exc.scope}"'
        )
    elif isinstance(exc, PayloadTooLarge):
        content["limit"] = exc.limit
    elif isinstance(exc, BodyTimeout):
        # The rest of the body may still be trickling in: RFC 9110 §15.5.9, close.
        content["timeout"] = exc.timeout
        headers["Connection"] = "close"
    elif isinstance(exc, MalformedJson):
        content["line"], content["column"] = exc.line, exc.column
    elif isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = "5"
        log.error("store unavailable: %s", exc.message)
    return JsonResponse(content, status, headers)


async def kpihub_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KpihubError)
    return error_response(request, exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {
        404: f"Nothing is served at {request.url.path}. See /openapi.json for the endpoints.",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }.get(exc.status_code, str(exc.detail))
    return JsonResponse({"message": message}, exc.status_code, exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    request.state.error = type(exc).__name__
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JsonResponse({"message": "Server Error"}, 500)
