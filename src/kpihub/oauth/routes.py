"""OAuth 2.0 endpoints: token (client credentials), revocation, introspection, metadata."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kpihub.domain import ALL_SCOPES, Client, Tenant
from kpihub.errors import InvalidToken, LimitState, OAuthError, RateLimited
from kpihub.http.body import read_body
from kpihub.http.responses import JsonResponse
from kpihub.oauth.bearer import AUTH_FAILURE_LIMIT
from kpihub.oauth.secrets import verify_secret, verify_unknown
from kpihub.oauth.token_request import (
    ClientCredentials,
    parse_client_request,
    parse_token_request,
)
from kpihub.ratelimit import rate_limit_headers
from kpihub.services import Services, services
from kpihub.tenancy import audience_for, client_address, issuer_for

TOKEN_ADDRESS_LIMIT = "token-address"  # noqa: S105 - a limit name, not a secret
TOKEN_CLIENT_LIMIT = "token-client"  # noqa: S105 - a limit name, not a secret
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_BODY_BYTES = 64 * 1024
_TOUCH_EVERY = 60  # seconds between last-use writes for one client


def _answer_headers(request: Request) -> dict[str, str]:
    """No caching (RFC 6749 §5.1), and where the client stands against its token limit."""
    state: LimitState | None = getattr(request.state, "ratelimit", None)
    if state is None:
        return dict(_NO_STORE)
    return {**_NO_STORE, **rate_limit_headers(state, limited=False)}


def _invalid_client(basic: bool) -> OAuthError:
    # One message for unknown ids, wrong secrets and other tenants' ids: no enumeration.
    return OAuthError(
        "invalid_client",
        "Client authentication failed: unknown client_id or wrong client_secret for this "
        "tenant. Check both values for this environment.",
        basic=basic,
    )


async def _authenticate_client(
    svc: Services, request: Request, tenant: Tenant, creds: ClientCredentials
) -> Client:
    settings = svc.settings
    request.state.ratelimit = await svc.limiter.hit(
        TOKEN_CLIENT_LIMIT, creds.client_id, settings.token_rate_limit_per_client
    )
    address = client_address(request, settings)
    failures = await svc.limiter.peek(
        AUTH_FAILURE_LIMIT, address, settings.auth_failure_limit_per_address
    )
    if failures.remaining <= 0:
        # Checked before the secret: once an address has spent its failures, even the
        # right secret is refused until the window ends, so guessing learns nothing.
        raise RateLimited(failures)
    client = await svc.storage.get_client(creds.client_id)
    reason = None
    if client is None:
        verify_unknown(creds.client_secret, svc.server_key)
        reason = "unknown_client"
    elif not verify_secret(
        creds.client_secret, svc.server_key, (client.secret_hash, client.old_secret_hash)
    ):
        reason = "wrong_secret"
    elif client.tenant_id != tenant.id:
        reason = "wrong_tenant"
    elif not client.active:
        reason = "client_revoked"
    if reason is not None or client is None:
        # The client is told one thing whatever the reason (no enumeration); the
        # operator's metrics and logs say which.
        svc.auth_failed(request, "client_secret", reason or "unknown_client")
        await svc.limiter.hit(AUTH_FAILURE_LIMIT, address, settings.auth_failure_limit_per_address)
        raise _invalid_client(creds.used_basic)
    request.state.client = client  # for the access log
    return client


async def _begin(request: Request) -> tuple[Services, Tenant, bytes]:
    svc = services(request)
    tenant = await svc.tenant(request)
    await svc.limiter.hit(
        TOKEN_ADDRESS_LIMIT,
        client_address(request, svc.settings),
        svc.settings.token_rate_limit_per_address,
    )
    # Bounded: these endpoints answer anyone, and a token request is a few hundred bytes.
    body = await read_body(request, MAX_BODY_BYTES, svc.settings.body_read_timeout)
    return svc, tenant, body


async def token(request: Request) -> Response:
    svc, tenant, body = await _begin(request)
    req = parse_token_request(
        request.headers.get("content-type"), body, request.headers.get("authorization")
    )
    client = await _authenticate_client(svc, request, tenant, req)
    if req.scope is None:
        scopes = client.scopes
    else:
        refused = [s for s in req.scope if s not in client.scopes]
        if refused:
            raise OAuthError(
                "invalid_scope",
                f"Scope {' '.join(refused)!r} is not allowed for this client. Allowed: "
                f"{' '.join(client.scopes)!r}; known scopes: {' '.join(ALL_SCOPES)!r}.",
            )
        scopes = req.scope
    now = int(time.time())
    ttl = client.token_ttl or svc.settings.token_ttl
    access_token, _ = svc.signer.issue(
        issuer=issuer_for(tenant.name, svc.settings),
        audience=audience_for(tenant.name, svc.settings),
        client_id=client.client_id,
        environment=client.environment.value,
        scopes=scopes,
        ttl=ttl,
        now=now,
        tenant=tenant.name,
    )
    if now - svc.last_touch.get(client.id, 0) >= _TOUCH_EVERY:
        svc.last_touch[client.id] = now
        await svc.storage.touch_client(client.id, now)
    return JsonResponse(
        {
            "token_type": "Bearer",
            "expires_in": ttl,
            "access_token": access_token,
            "scope": " ".join(scopes),
        },
        headers=_answer_headers(request),
    )


async def _own_token_claims(
    svc: Services, tenant: Tenant, client: Client, token_value: str
) -> dict[str, Any] | None:
    """The claims of ``token_value`` when it is a live token of ``client``; else None."""
    try:
        claims = svc.signer.verify(
            token_value,
            issuer=issuer_for(tenant.name, svc.settings),
            audience=audience_for(tenant.name, svc.settings),
        )
    except InvalidToken:
        return None
    if claims.get("client_id") != client.client_id:
        return None
    return claims


async def revoke(request: Request) -> Response:
    """RFC 7009: answer 200 whether or not the token was valid, so nothing leaks."""
    svc, tenant, body = await _begin(request)
    req = parse_client_request(
        request.headers.get("content-type"), body, request.headers.get("authorization")
    )
    client = await _authenticate_client(svc, request, tenant, req)
    claims = await _own_token_claims(svc, tenant, client, req.token)
    if claims is not None:
        await svc.storage.revoke_token(str(claims["jti"]), client.id, int(claims["exp"]))
    return Response(status_code=200, headers=_answer_headers(request))


async def introspect(request: Request) -> Response:
    """RFC 7662, for the calling client's own tokens; any other token is inactive."""
    svc, tenant, body = await _begin(request)
    req = parse_client_request(
        request.headers.get("content-type"), body, request.headers.get("authorization")
    )
    client = await _authenticate_client(svc, request, tenant, req)
    claims = await _own_token_claims(svc, tenant, client, req.token)
    live = (
        claims is not None
        and int(claims.get("iat", 0)) >= client.tokens_valid_after
        and not await svc.storage.is_token_revoked(str(claims.get("jti", "")))
    )
    if not live or claims is None:
        return JsonResponse({"active": False}, headers=_answer_headers(request))
    answer = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "iss", "aud", "exp", "iat", "nbf", "jti", "env"):
        if name in claims:
            answer[name] = claims[name]
    return JsonResponse(answer, headers=_answer_headers(request))


async def jwks(request: Request) -> Response:
    return JsonResponse(services(request).signer.jwks(), headers={"Cache-Control": "max-age=300"})


async def metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata for the tenant of the host."""
    svc = services(request)
    tenant = await svc.tenant(request)
    issuer = issuer_for(tenant.name, svc.settings)
    auth_methods = ["client_secret_basic", "client_secret_post"]
    return JsonResponse(
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "scopes_supported": list(ALL_SCOPES),
            "token_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "introspection_endpoint_auth_methods_supported": auth_methods,
        }
    )


routes = [
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/oauth/introspect", introspect, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
]
