"""Errors the client raises; each carries what the server said.

Hierarchy::

    KpiError
    ├── KpiConnectionError       the server could not be reached (after retries)
    ├── LocalValidationError     the payload breaks the server's rules (checked offline)
    └── ApiError                 the server answered with an error status
        ├── BadRequestError          400
        ├── AuthenticationError      401 (token endpoint: invalid_client; API: invalid_token)
        ├── PermissionDeniedError    403 (missing scope)
        ├── NotFoundError            404 (unknown tenant host or API version)
        ├── RequestTimeoutError      408 (the body arrived too slowly; retried)
        ├── PayloadTooLargeError     413
        ├── UnsupportedMediaTypeError 415
        ├── ValidationError          422 (``errors``: field -> messages)
        ├── RateLimitError           429 (``retry_after``)
        └── ServerError              5xx (``retry_after`` when sent)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kpihub.client._models import Ack


class KpiError(Exception):
    """Base of the client's errors. ``acknowledged``: what was stored before it happened."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.acknowledged: Ack | None = None


class KpiConnectionError(KpiError):
    pass


class LocalValidationError(KpiError):
    """``errors`` maps a dotted path (as the server would name it) to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        count = sum(len(v) for v in errors.values())
        first = next(iter(errors.values()))[0] if errors else "The payload is invalid."
        super().__init__(first if count <= 1 else f"{first} (and {count - 1} more)")
        self.errors = errors


class ApiError(KpiError):
    """An error answer. ``error`` is the OAuth error code when there is one."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str | None = None,
        errors: dict[str, list[str]] | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.errors = errors or {}
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"


class BadRequestError(ApiError):
    pass


class AuthenticationError(ApiError):
    pass


class PermissionDeniedError(ApiError):
    pass


class NotFoundError(ApiError):
    pass


class PayloadTooLargeError(ApiError):
    pass


class UnsupportedMediaTypeError(ApiError):
    pass


class ValidationError(ApiError):
    pass


class RequestTimeoutError(ApiError):
    pass


class RateLimitError(ApiError):
    pass


class ServerError(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: ValidationError,
    429: RateLimitError,
}


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to the backoff


def api_error(status: int, content: bytes, headers: Mapping[str, str]) -> ApiError:
    """The typed error for an error answer, with the server's message and field errors."""
    message = ""
    error: str | None = None
    errors: dict[str, list[str]] = {}
    try:
        doc = json.loads(content)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = str(doc.get("message") or doc.get("error_description") or "")
        raw_error = doc.get("error")
        error = raw_error if isinstance(raw_error, str) else None
        raw_errors = doc.get("errors")
        if isinstance(raw_errors, dict):
            errors = {
                str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)]
                for k, v in raw_errors.items()
            }
    if not message:
        text = content.decode("utf-8", "replace").strip()
        message = text[:300] or f"HTTP {status} without a body"
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(
        status,
        message,
        error=error,
        errors=errors,
        retry_after=retry_after(headers),
        headers=headers,
    )
