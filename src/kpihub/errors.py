"""Domain errors: plain exceptions, free of HTTP.

They are translated to HTTP responses in one place, ``kpihub.http.errors``.

Hierarchy::

    KpihubError
    ├── NotFound                 a tenant, client, integration... does not exist
    │   └── UnknownTenant        the request's host names no tenant
    ├── Conflict                 the thing already exists (CLI: tenant/integration twice)
    ├── InvalidInput             one bad argument (CLI, settings): field, value, fix
    ├── ValidationFailed         a KPI batch with one or more field errors (422)
    ├── PayloadTooLarge          body or element count over a limit (413)
    ├── UnsupportedMediaType     wrong Content-Type / Content-Encoding (415)
    ├── MalformedBody            body cannot be read, e.g. corrupt gzip (400)
    │   └── MalformedJson        body is not JSON; names line and column (400)
    ├── BodyTimeout              the body did not arrive within the read timeout (408)
    ├── UnknownApiVersion        ``/api/external/{version}`` not supported (404)
    ├── OAuthError               RFC 6749 §5.2 error at the token endpoint
    ├── InvalidToken             bearer token missing, invalid, expired, revoked (401)
    ├── InsufficientScope        bearer token lacks a scope (403)
    ├── RateLimited              over a throttle; carries the limit state (429)
    └── StoreUnavailable         the store cannot be reached (503)
"""

from __future__ import annotations

from dataclasses import dataclass


class KpihubError(Exception):
    """Base class of every error kpihub raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(KpihubError):
    pass


class UnknownTenant(NotFound):
    def __init__(self, host: str) -> None:
        super().__init__(
            f"No tenant is served at host '{host}'. Use https://{{tenant}}.{{base_domain}}/ "
            "with a tenant created by 'kpihub tenant create'."
        )
        self.host = host


class Conflict(KpihubError):
    pass


class InvalidInput(KpihubError):
    def __init__(self, field: str, value: object, fix: str) -> None:
        super().__init__(f"{field}: {value!r} is not valid. {fix}")
        self.field = field
        self.value = value
        self.fix = fix


class ValidationFailed(KpihubError):
    """Every problem found in a payload, keyed by dotted path (Laravel style)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        first = next(iter(errors.values()))[0] if errors else "The given data was invalid."
        count = sum(len(v) for v in errors.values())
        more = count - 1
        if more > 0:
            first = f"{first} (and {more} more error{'s' if more > 1 else ''})"
        super().__init__(first)
        self.errors = errors


class PayloadTooLarge(KpihubError):
    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class UnsupportedMediaType(KpihubError):
    pass


class MalformedBody(KpihubError):
    pass


class BodyTimeout(KpihubError):
    def __init__(self, message: str, *, timeout: float) -> None:
        super().__init__(message)
        self.timeout = timeout


class MalformedJson(MalformedBody):
    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class UnknownApiVersion(NotFound):
    def __init__(self, version: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"API version '{version}' is not supported. Supported versions: "
            + ", ".join(supported)
            + "."
        )
        self.version = version
        self.supported = supported


class OAuthError(KpihubError):
    """An RFC 6749 §5.2 error. ``basic`` is True when the client used HTTP Basic."""

    STATUS = {
        "invalid_request": 400,
        "invalid_client": 401,
        "invalid_grant": 400,
        "unauthorized_client": 400,
        "unsupported_grant_type": 400,
        "invalid_scope": 400,
        "unsupported_token_type": 400,
    }

    def __init__(self, error: str, description: str, *, basic: bool = False) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.basic = basic

    @property
    def status(self) -> int:
        return self.STATUS.get(self.error, 400)


class InvalidToken(KpihubError):
    """Missing or unusable bearer token.

    ``error`` is None when no token was sent at all (RFC 6750 §3.1). ``reason`` is a
    short fixed word for metrics and logs (``missing``, ``malformed``, ``expired``...),
    never shown to the client.
    """

    def __init__(
        self, description: str, *, error: str | None = "invalid_token", reason: str = "invalid"
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.reason = reason


class InsufficientScope(KpihubError):
    def __init__(self, scope: str) -> None:
        super().__init__(
            f"This access token lacks the '{scope}' scope. Request a token with "
            f"scope={scope} using a client that is allowed it."
        )
        self.scope = scope


@dataclass(frozen=True)
class LimitState:
    """Where a client stands against one rate limit."""

    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the window resets
    window: int  # seconds
    policy: str = "default"


class RateLimited(KpihubError):
    def __init__(self, state: LimitState, message: str = "Too Many Attempts.") -> None:
        super().__init__(message)
        self.state = state


class StoreUnavailable(KpihubError):
    pass
