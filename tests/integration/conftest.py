"""Fixtures of the storage tests; each module provides its own ``store``."""

from __future__ import annotations

import pytest

from kpihub.domain import Client, Environment, NewClient, Tenant
from kpihub.storage import Storage


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def tenant(store: Storage) -> Tenant:
    return await store.create_tenant("acme", "UTC", 1)


@pytest.fixture
async def client(store: Storage, tenant: Tenant) -> Client:
    return await store.create_client(
        NewClient(
            tenant_id=tenant.id,
            environment=Environment.TESTING,
            name="pos",
            client_id="client-1",
            secret_hash=b"\x00" * 32,
            scopes=("kpi:write",),
            rate_limit=None,
            token_ttl=None,
            created_at=1,
        )
    )
