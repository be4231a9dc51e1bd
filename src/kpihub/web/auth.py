"""Sign-in, sessions and CSRF for the dashboard.

* Session: a cookie signed with itsdangerous (HMAC-SHA-256) under a key derived from
  the server key with its own label, holding the tenant id, the user id, the session's
  CSRF token and when it was issued. No ``Domain`` attribute, so the browser sends it
  to its own tenant's host only; and a cookie carried to another tenant's host anyway
  is refused there, because its tenant id is not that host's. Every request reads the
  user again: a deleted user or a changed role applies at once, and signing out voids
  every session of the user issued until then (``sessions_valid_after``).
* Flags: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the request came over https.
* CSRF: every state-changing form carries the session's token (synchronizer token),
  compared in constant time; a cross-origin ``Origin`` header is refused too. The
  sign-in form, which has no session yet, uses a double-submit cookie.
* Sign-in throttle: attempts per source address, and failures per (tenant, email), on
  the app's ``Limiter`` (so Redis shares them across nodes). An unknown email costs an
  argon2 verification like a known one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from kpihub.domain import DashboardUser, Environment, Role, Tenant
from kpihub.services import Services
from kpihub.tenancy import request_host, request_scheme

SESSION_COOKIE = "kpihub_session"
LOGIN_CSRF_COOKIE = "kpihub_login_csrf"
ENV_COOKIE = "kpihub_env"
CSRF_FIELD = "csrf_token"
DEFAULT_ENVIRONMENT = Environment.PRODUCTION

_SESSION_LABEL = b"kpihub/dashboard/session-cookie/v1"
_SESSION_SALT = "kpihub.dashboard.session"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of this request."""

    user: DashboardUser
    tenant: Tenant
    csrf: str
    environment: Environment

    @property
    def is_admin(self) -> bool:
        return self.user.role is Role.ADMIN


def session_key(server_key: bytes) -> bytes:
    """The cookie-signing key: derived, never the server key itself (which hashes secrets)."""
    return hmac.new(server_key, _SESSION_LABEL, hashlib.sha256).digest()


@functools.lru_cache(maxsize=8)
def _serializer(server_key: bytes) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        session_key(server_key), salt=_SESSION_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def issue_session(svc: Services, user: DashboardUser) -> str:
    payload = {"t": user.tenant_id, "u": user.id, "c": secrets.token_urlsafe(32), "i": time.time()}
    return str(_serializer(svc.server_key).dumps(payload))


def secure(request: Request, svc: Services) -> bool:
    return request_scheme(request, svc.settings) == "https"


def set_cookie(
    response: Response, request: Request, svc: Services, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=secure(request, svc),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request, svc: Services, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=secure(request, svc), httponly=True, samesite="lax"
    )


def environment_of(request: Request) -> Environment:
    try:
        return Environment(request.cookies.get(ENV_COOKIE, ""))
    except ValueError:
        return DEFAULT_ENVIRONMENT


async def current_viewer(request: Request, svc: Services, tenant: Tenant) -> Viewer | None:
    """The user whose valid session cookie this request carries for this tenant, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        payload: Any = _serializer(svc.server_key).loads(
            cookie, max_age=svc.settings.dashboard_session_ttl
        )
        tenant_id, user_id, csrf, issued = payload["t"], payload["u"], payload["c"], payload["i"]
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if tenant_id != tenant.id or not isinstance(user_id, int) or not isinstance(csrf, str):
        return None  # a cookie of another tenant: refused on this host
    user = await svc.storage.get_user_by_id(user_id)
    if user is None or user.tenant_id != tenant.id:
        return None
    if not isinstance(issued, int | float) or issued < user.sessions_valid_after:
        return None  # signed out since
    return Viewer(user=user, tenant=tenant, csrf=csrf, environment=environment_of(request))


def same_origin(request: Request, svc: Services) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    expected = f"{request_scheme(request, svc.settings)}://{request_host(request, svc.settings)}"
    return origin.lower() == expected.lower()


def csrf_ok(expected: str | None, form: FormData) -> bool:
    sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in; anything else goes to the overview."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 for c in target):
        return "/"
    return target
