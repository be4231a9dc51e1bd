"""What the routes need, built once per app in the lifespan and kept on ``app.state``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from starlette.requests import Request

from kpihub.domain import Tenant
from kpihub.errors import UnknownTenant
from kpihub.metrics import Metrics
from kpihub.oauth.jwt import TokenSigner
from kpihub.oauth.keys import load_signer
from kpihub.ratelimit import Limiter
from kpihub.settings import Settings
from kpihub.storage import Storage
from kpihub.tenancy import request_host, tenant_name_from_host

SIGNER_REFRESH_EVERY = 5.0  # seconds
MAX_REMEMBERED_INTEGRATIONS = 10_000


@dataclass
class Services:
    settings: Settings
    storage: Storage
    limiter: Limiter
    signer: TokenSigner
    server_key: bytes
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = field(default_factory=time.time)
    last_touch: dict[int, int] = field(default_factory=dict)  # client pk -> epoch
    _zones: dict[str, ZoneInfo] = field(default_factory=dict)
    _integrations: set[tuple[int, str]] = field(default_factory=set)
    _signer_loaded: float = float("-inf")

    async def refresh_signer(self) -> bool:
        """Reload the signing keys (another node may have added one); at most every 5 s."""
        now = time.monotonic()
        if now - self._signer_loaded < SIGNER_REFRESH_EVERY:
            return False
        self._signer_loaded = now
        self.signer = await load_signer(self.storage)
        return True

    def auth_failed(self, request: Request, credential: str, reason: str) -> None:
        """Count a refused authentication; the access-log line of the request says why."""
        self.metrics.auth_failures.labels(credential, reason).inc()
        request.state.auth_failure = f"{credential}:{reason}"

    def zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    def tenant_name(self, request: Request) -> str:
        """The tenant name the request's host gives (unchecked against the store);
        ``UnknownTenant`` when the host names none."""
        host = request_host(request, self.settings)
        name = tenant_name_from_host(host, self.settings.base_domain)
        if name is None:
            raise UnknownTenant(host)
        return name

    async def integration_registered(self, tenant_id: int, identifier: str) -> bool:
        """Whether ``identifier`` is registered for the tenant.

        Identifiers are never deleted, so a "yes" is remembered (bounded); a "no" is
        always asked again, so an identifier registered a moment ago works at once.
        """
        key = (tenant_id, identifier)
        if key in self._integrations:
            return True
        if not await self.storage.integration_exists(tenant_id, identifier):
            return False
        if len(self._integrations) >= MAX_REMEMBERED_INTEGRATIONS:
            self._integrations.clear()
        self._integrations.add(key)
        return True

    async def tenant(self, request: Request) -> Tenant:
        """The tenant the request's host names; ``UnknownTenant`` otherwise."""
        cached: Tenant | None = getattr(request.state, "tenant", None)
        if cached is not None:
            return cached
        tenant = await self.storage.get_tenant(self.tenant_name(request))
        if tenant is None:
            raise UnknownTenant(request_host(request, self.settings))
        request.state.tenant = tenant
        return tenant


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
