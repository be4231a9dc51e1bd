"""Bearer authentication of API requests (RFC 6750), then the client's throttle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from kpihub.domain import Client, Environment, Tenant
from kpihub.errors import InsufficientScope, InvalidToken, UnknownTenant
from kpihub.oauth.jwt import UnknownSigningKey
from kpihub.oauth.schemes import shown_scheme
from kpihub.services import Services
from kpihub.tenancy import audience_for, client_address, issuer_for, request_host

API_LIMIT = "api"
AUTH_FAILURE_LIMIT = "auth-failure"


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: Tenant
    client: Client
    claims: dict[str, Any]

    @property
    def environment(self) -> Environment:
        return self.client.environment


def _bearer_token(request: Request) -> str:
    if "access_token" in request.query_params:
        raise InvalidToken(
            "Access tokens are not accepted in the query string; send the header "
            "'Authorization: Bearer <access_token>'.",
            error="invalid_request",
            reason="malformed",
        )
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken(
            "Authentication required: send 'Authorization: Bearer <access_token>' with a "
            "token from POST /oauth/token.",
            error=None,
            reason="missing",
        )
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        # RFC 6750 §3.1: another scheme is no Bearer authentication at all, so the
        # challenge carries no error code; it only says that Bearer is expected.
        raise InvalidToken(
            f"The Authorization header uses the scheme {shown_scheme(header)}; this API expects "
            "'Authorization: Bearer <access_token>' with a token from POST /oauth/token.",
            error=None,
            reason="missing",
        )
    if not token:
        raise InvalidToken(
            "The Authorization header must be 'Bearer <access_token>'.",
            error="invalid_request",
            reason="malformed",
        )
    return token


async def _claims(svc: Services, request: Request, tenant_name: str) -> dict[str, Any]:
    token = _bearer_token(request)
    settings = svc.settings
    issuer, audience = issuer_for(tenant_name, settings), audience_for(tenant_name, settings)
    try:
        return svc.signer.verify(token, issuer=issuer, audience=audience)
    except UnknownSigningKey:
        # A key another node generated after this one loaded its keys.
        if not await svc.refresh_signer():
            raise
        return svc.signer.verify(token, issuer=issuer, audience=audience)


async def _verify(svc: Services, request: Request) -> Principal:
    name = svc.tenant_name(request)
    try:
        claims = await _claims(svc, request, name)
    except InvalidToken:
        await svc.tenant(request)  # an unknown tenant is a 404 before any 401
        raise
    # Tenant, client and revocation in one read: every request sees the store's state
    # (revocations and limits set on any node apply at once) for one round trip.
    found = await svc.storage.bearer_context(
        name, str(claims.get("client_id", "")), str(claims.get("jti", ""))
    )
    if found is None:
        raise UnknownTenant(request_host(request, svc.settings))
    tenant, client = found.tenant, found.client
    request.state.tenant = tenant
    if client is None:
        raise InvalidToken(
            "The access token's client does not exist on this tenant.", reason="unknown_client"
        )
    if not client.active:
        raise InvalidToken(
            "The client of this access token has been revoked.", reason="client_revoked"
        )
    if int(claims.get("iat", 0)) < client.tokens_valid_after:
        raise InvalidToken(
            "The access token has been revoked; request a new one.", reason="token_revoked"
        )
    if claims.get("env") != client.environment.value:
        raise InvalidToken(
            "The access token's environment does not match its client.", reason="wrong_environment"
        )
    if found.token_revoked:
        raise InvalidToken(
            "The access token has been revoked; request a new one.", reason="token_revoked"
        )
    return Principal(tenant=tenant, client=client, claims=claims)


async def authenticate(svc: Services, request: Request, scope: str) -> Principal:
    """The caller's principal, after counting the request against its client's limit.

    Failed authentications count against the caller's address instead, so guessing
    tokens is throttled too. The limit state lands on ``request.state.ratelimit`` so
    every response, errors included, carries the headers.
    """
    settings = svc.settings
    try:
        principal = await _verify(svc, request)
    except InvalidToken as exc:
        svc.auth_failed(request, "bearer", exc.reason)
        await svc.limiter.hit(
            AUTH_FAILURE_LIMIT,
            client_address(request, settings),
            settings.auth_failure_limit_per_address,
        )
        raise
    request.state.client = principal.client  # for the access log
    limit = principal.client.rate_limit or settings.rate_limit
    request.state.ratelimit = await svc.limiter.hit(API_LIMIT, principal.client.client_id, limit)
    if scope not in str(principal.claims.get("scope", "")).split():
        svc.auth_failed(request, "bearer", "insufficient_scope")
        raise InsufficientScope(scope)
    return principal
