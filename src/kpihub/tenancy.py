"""Host → tenant: ``{tenant}.{base_domain}``; forwarded headers only when trusted."""

from __future__ import annotations

import re

from starlette.requests import Request

from kpihub.settings import Settings

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def valid_tenant_name(name: str) -> bool:
    """A tenant name is one DNS label: lowercase letters, digits and inner hyphens."""
    return bool(_LABEL.match(name))


def request_host(request: Request, settings: Settings) -> str:
    host = request.headers.get("host", "")
    if settings.trust_forwarded_headers:
        forwarded = request.headers.get("x-forwarded-host")
        if forwarded:
            host = forwarded.split(",", 1)[0].strip()
    return host


def request_scheme(request: Request, settings: Settings) -> str:
    if settings.trust_forwarded_headers:
        proto = request.headers.get("x-forwarded-proto")
        if proto:
            return proto.split(",", 1)[0].strip().lower()
    return request.url.scheme


def client_address(request: Request, settings: Settings) -> str:
    if settings.trust_forwarded_headers:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",", 1)[0].strip()
    return request.client.host if request.client else "unknown"


def tenant_name_from_host(host: str, base_domain: str) -> str | None:
    """``acme.example.com:443`` with base ``example.com`` → ``acme``; otherwise None."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal never names a tenant
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    suffix = "." + base_domain
    if not host.endswith(suffix):
        return None
    name = host[: -len(suffix)]
    return name if valid_tenant_name(name) else None


def issuer_for(tenant_name: str, settings: Settings) -> str:
    """The tenant's URL: the ``iss`` of its tokens. No port: it must not depend on the proxy."""
    return f"{settings.public_scheme}://{tenant_name}.{settings.base_domain}"


def audience_for(tenant_name: str, settings: Settings) -> str:
    return issuer_for(tenant_name, settings) + "/api/external"
