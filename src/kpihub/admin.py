"""Administration use cases shared by the CLI (and later the dashboard).

Each function takes a started ``Storage`` and returns domain objects; no printing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpihub.domain import (
    ALL_SCOPES,
    Client,
    DashboardUser,
    Environment,
    Integration,
    NewClient,
    NewDashboardUser,
    Role,
    SigningKey,
    Tenant,
)
from kpihub.errors import InvalidInput, NotFound
from kpihub.oauth.jwt import generate_signing_key
from kpihub.oauth.secrets import hash_secret, new_client_id, new_secret
from kpihub.storage import Storage
from kpihub.tenancy import valid_tenant_name

MAX_IDENTIFIER = 255


@dataclass(frozen=True)
class IssuedSecret:
    """A client with its secret in clear: shown once, never stored."""

    client: Client
    secret: str


def _now() -> int:
    return int(time.time())


async def create_tenant(storage: Storage, name: str, timezone: str = "UTC") -> Tenant:
    if not valid_tenant_name(name):
        raise InvalidInput(
            "name",
            name,
            "A tenant name is its subdomain: 1-63 lowercase letters, digits or inner hyphens.",
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "--timezone", timezone, "Use an IANA zone such as 'UTC' or 'Europe/Copenhagen'."
        ) from None
    return await storage.create_tenant(name, timezone, _now())


async def tenant(storage: Storage, name: str) -> Tenant:
    found = await storage.get_tenant(name)
    if found is None:
        raise NotFound(f"No tenant named '{name}'. List them with 'kpihub tenant list'.")
    return found


async def rotate_signing_key(storage: Storage) -> SigningKey:
    """Add a new signing key; nodes sign with the newest and verify with every active one."""
    key = generate_signing_key(_now())
    await storage.add_signing_key(key)
    return key


async def retire_signing_key(storage: Storage, kid: str) -> SigningKey:
    keys = await storage.signing_keys()
    active = [k for k in keys if k.retired_at is None]
    if [k.kid for k in active] == [kid]:
        raise InvalidInput("KID", kid, "It is the only active key; run 'kpihub keys rotate' first.")
    return await storage.retire_signing_key(kid, _now())


async def create_integration(storage: Storage, tenant_name: str, identifier: str) -> Integration:
    if not identifier or len(identifier) > MAX_IDENTIFIER or not identifier.isprintable():
        raise InvalidInput(
            "IDENTIFIER", identifier, f"Use 1 to {MAX_IDENTIFIER} printable characters."
        )
    t = await tenant(storage, tenant_name)
    return await storage.create_integration(t.id, identifier, _now())


def _scopes(scopes: Sequence[str] | None) -> tuple[str, ...]:
    if not scopes:
        return ALL_SCOPES
    words = tuple(dict.fromkeys(w for s in scopes for w in s.replace(",", " ").split()))
    unknown = [w for w in words if w not in ALL_SCOPES]
    if unknown:
        raise InvalidInput("--scope", " ".join(unknown), f"Known scopes: {' '.join(ALL_SCOPES)}.")
    return words


def _positive(field: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise InvalidInput(field, value, "Give a positive whole number.")
    return value


async def create_client(
    storage: Storage,
    server_key: bytes,
    *,
    tenant_name: str,
    environment: Environment,
    name: str,
    scopes: Sequence[str] | None = None,
    rate_limit: int | None = None,
    token_ttl: int | None = None,
) -> IssuedSecret:
    t = await tenant(storage, tenant_name)
    if token_ttl is not None and not 60 <= token_ttl <= 86_400:
        raise InvalidInput("--token-ttl", token_ttl, "Give seconds between 60 and 86400.")
    secret = new_secret()
    client = await storage.create_client(
        NewClient(
            tenant_id=t.id,
            environment=environment,
            name=name,
            client_id=new_client_id(environment),
            secret_hash=hash_secret(secret, server_key),
            scopes=_scopes(scopes),
            rate_limit=_positive("--rate-limit", rate_limit),
            token_ttl=token_ttl,
            created_at=_now(),
        )
    )
    return IssuedSecret(client, secret)


async def client(storage: Storage, client_id: str) -> Client:
    found = await storage.get_client(client_id)
    if found is None:
        raise NotFound(f"No client with client_id '{client_id}'. See 'kpihub client list'.")
    return found


async def client_of_tenant(storage: Storage, tenant_id: int, client_id: str) -> Client:
    """The client, when it belongs to the tenant; ``NotFound`` otherwise (not even whether
    another tenant has it)."""
    found = await storage.get_client(client_id)
    if found is None or found.tenant_id != tenant_id:
        raise NotFound(f"No client with client_id '{client_id}'.")
    return found


async def rotate_secret(storage: Storage, server_key: bytes, client_id: str) -> IssuedSecret:
    current = await client(storage, client_id)
    if current.old_secret_hash is not None:
        raise InvalidInput(
            "client_id",
            client_id,
            "This client already has an old secret in use; retire it first with "
            "'kpihub client retire-old-secret'.",
        )
    secret = new_secret()
    updated = await storage.rotate_secret(client_id, hash_secret(secret, server_key))
    return IssuedSecret(updated, secret)


async def retire_old_secret(storage: Storage, client_id: str) -> Client:
    await client(storage, client_id)
    return await storage.retire_old_secret(client_id)


async def revoke_client(storage: Storage, client_id: str) -> Client:
    await client(storage, client_id)
    return await storage.revoke_client(client_id, _now())


async def set_rate_limit(storage: Storage, client_id: str, rate_limit: int | None) -> Client:
    await client(storage, client_id)
    return await storage.set_rate_limit(client_id, _positive("RATE_LIMIT", rate_limit))


# -- dashboard users ---------------------------------------------------------------------

MAX_EMAIL = 254


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively (as every mail provider treats them)."""
    return email.strip().lower()


async def create_user(
    storage: Storage, tenant_name: str, email: str, password: str, role: Role = Role.VIEWER
) -> DashboardUser:
    """A dashboard user of ``tenant_name``; the password is kept only as an argon2id hash."""
    from kpihub.web.passwords import hash_password, password_problem

    address = normalise_email(email)
    local, _, domain = address.partition("@")
    if not local or "." not in domain or len(address) > MAX_EMAIL or not address.isprintable():
        raise InvalidInput("--email", email, "Give an email address such as ada@example.com.")
    problem = password_problem(password)
    if problem is not None:
        raise InvalidInput("password", "(hidden)", problem)
    t = await tenant(storage, tenant_name)
    password_hash = await asyncio.to_thread(hash_password, password)
    return await storage.create_user(
        NewDashboardUser(
            tenant_id=t.id,
            email=address,
            password_hash=password_hash,
            role=role,
            created_at=_now(),
        )
    )
