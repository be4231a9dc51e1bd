"""What every dashboard page shares: the signed-in check, CSRF, rendering, headers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kpihub.domain import Environment, Tenant
from kpihub.http.body import body_deadline
from kpihub.services import Services, services
from kpihub.web.auth import CSRF_FIELD, Viewer, csrf_ok, current_viewer, same_origin

# Scripts and styles come from /static only: no inline script can run, even if some
# text slipped through escaping. Chart data travels in <script type="application/json">.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_FIELDS = 50


@dataclass(frozen=True, slots=True)
class Ctx:
    """One dashboard request: services, tenant, who is signed in, the posted form."""

    request: Request
    svc: Services
    tenant: Tenant
    viewer: Viewer
    form: FormData | None

    @property
    def environment(self) -> Environment:
        return self.viewer.environment

    @property
    def zone(self) -> ZoneInfo:
        return self.svc.zone(self.tenant.timezone)


View = Callable[[Ctx], Awaitable[Response]]


def _when(epoch: float | int | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, zone).strftime(fmt)


@functools.cache
def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kpihub.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["urlencode"] = urlencode
    env.globals["csrf_field"] = CSRF_FIELD
    return env


def html(
    request: Request, name: str, values: dict[str, Any], status: int = 200, **extra: Any
) -> HTMLResponse:
    body = templates().get_template(name).render(request=request, path=request.url.path, **values)
    return HTMLResponse(body, status, headers={**SECURITY_HEADERS, **extra})


def render(ctx: Ctx, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page inside the layout (navigation, environment switch, sign-out)."""
    common = {
        "viewer": ctx.viewer,
        "tenant": ctx.tenant,
        "environment": ctx.environment.value,
        "environments": [e.value for e in Environment],
        "csrf": ctx.viewer.csrf,
        "tz": ctx.zone,
    }
    return html(ctx.request, name, {**common, **values}, status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})


def forbidden(ctx: Ctx, message: str) -> HTMLResponse:
    return render(ctx, "error.html", 403, title="Not allowed", message=message)


def page(*, admin: bool = False) -> Callable[[View], Callable[[Request], Awaitable[Response]]]:
    """Make ``view`` a route endpoint: signed in (admins only with ``admin``), and for a
    POST a form whose CSRF token is the session's, from this origin."""

    def wrap(view: View) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            svc = services(request)
            tenant = await svc.tenant(request)
            viewer = await current_viewer(request, svc, tenant)
            if viewer is None:
                target = request.url.path if request.method == "GET" else "/"
                if request.method == "GET" and request.url.query:
                    target += "?" + request.url.query
                return redirect("/login?" + urlencode({"next": target}))
            form: FormData | None = None
            if request.method == "POST":
                async with body_deadline(svc.settings.body_read_timeout):
                    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
            ctx = Ctx(request, svc, tenant, viewer, form)
            if form is not None and not (same_origin(request, svc) and csrf_ok(viewer.csrf, form)):
                return forbidden(
                    ctx,
                    "The form's security token is missing or out of date. Go back, reload the "
                    "page and send the form again.",
                )
            if admin and not viewer.is_admin:
                return forbidden(ctx, "This page is for the tenant's administrators.")
            return await view(ctx)

        return endpoint

    return wrap


def field(ctx: Ctx, name: str) -> str:
    """A posted text field, stripped ('' when absent)."""
    assert ctx.form is not None
    value = ctx.form.get(name)
    return value.strip() if isinstance(value, str) else ""
