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

    async def tenant(self, request: Request) -> Tenant:
        """The tenant the request's host names; ``UnknownTenant`` otherwise."""
        cached: Tenant | None = getattr(request.state, "tenant", None)
        if cached is not None:
            return cached
        host = request_host(request, self.settings)
        name = tenant_name_from_host(host, self.settings.base_domain)
        tenant = await self.storage.get_tenant(name) if name else None
        if tenant is None:
            raise UnknownTenant(host)
        request.state.tenant = tenant
        return tenant


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
