"""Sign in, sign out, and the environment switch."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response

from kpihub.admin import normalise_email
from kpihub.domain import Environment
from kpihub.errors import RateLimited
from kpihub.http.body import body_deadline
from kpihub.ratelimit import rate_limit_headers
from kpihub.services import Services, services
from kpihub.tenancy import client_address
from kpihub.web.auth import (
    ENV_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    csrf_ok,
    current_viewer,
    issue_session,
    new_login_csrf,
    safe_next,
    same_origin,
    set_cookie,
)
from kpihub.web.page import Ctx, field, html, page, redirect
from kpihub.web.passwords import verify_password

LOGIN_CSRF_TTL = 3600
ENV_COOKIE_TTL = 365 * 86400
WRONG = "The email or the password is wrong."


def _login_page(
    request: Request,
    svc: Services,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    token = new_login_csrf()
    response = html(
        request,
        "login.html",
        {
            "csrf": token,
            "error": error,
            "email": email,
            "next": safe_next(request.query_params.get("next")),
            "tenant_name": request.state.tenant.name,
        },
        status,
        **(headers or {}),
    )
    set_cookie(response, request, svc, LOGIN_CSRF_COOKIE, token, LOGIN_CSRF_TTL)
    return response


async def login_form(request: Request) -> Response:
    svc = services(request)
    tenant = await svc.tenant(request)
    if await current_viewer(request, svc, tenant) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return _login_page(request, svc)


async def login(request: Request) -> Response:
    svc = services(request)
    tenant = await svc.tenant(request)
    settings = svc.settings
    async with body_deadline(settings.body_read_timeout):
        form = await request.form(max_files=0, max_fields=10)
    if not same_origin(request, svc) or not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), form):
        return _login_page(
            request,
            svc,
            status=403,
            error="The sign-in form was out of date; it has been reloaded. Please try again.",
        )
    raw_email = form.get("email")
    raw_password = form.get("password")
    email = normalise_email(raw_email) if isinstance(raw_email, str) else ""
    password = raw_password if isinstance(raw_password, str) else ""
    account = f"{tenant.id}:{email}"
    try:
        await svc.limiter.hit(
            "dashboard-login-address",
            client_address(request, settings),
            settings.dashboard_login_limit_per_address,
        )
        state = await svc.limiter.peek(
            "dashboard-login-account", account, settings.dashboard_login_failures_per_account
        )
        if state.remaining <= 0:
            raise RateLimited(state)
    except RateLimited as exc:
        return _throttled(request, svc, email, exc)
    user = await svc.storage.get_user(tenant.id, email) if email else None
    # Unknown emails are checked against a dummy hash: the same work, the same answer.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if not ok or user is None:
        svc.auth_failed(request, "dashboard", "unknown_user" if user is None else "wrong_password")
        try:
            await svc.limiter.hit(
                "dashboard-login-account", account, settings.dashboard_login_failures_per_account
            )
        except RateLimited as exc:
            return _throttled(request, svc, email, exc)
        return _login_page(request, svc, status=401, error=WRONG, email=email)
    await svc.storage.record_login(user.id, int(time.time()))
    target = form.get("next")
    response = redirect(safe_next(target if isinstance(target, str) else None))
    set_cookie(
        response,
        request,
        svc,
        SESSION_COOKIE,
        issue_session(svc, user),
        settings.dashboard_session_ttl,
    )
    clear_cookie(response, request, svc, LOGIN_CSRF_COOKIE)
    return response


def _throttled(request: Request, svc: Services, email: str, exc: RateLimited) -> Response:
    headers = rate_limit_headers(exc.state, limited=True)
    return _login_page(
        request,
        svc,
        status=429,
        error=(
            f"Too many sign-in attempts. Wait {headers['Retry-After']} seconds before trying again."
        ),
        email=email,
        headers={"Retry-After": headers["Retry-After"]},
    )


@page()
async def logout(ctx: Ctx) -> Response:
    await ctx.svc.storage.end_sessions(ctx.viewer.user.id, int(time.time()))
    response = redirect("/login")
    clear_cookie(response, ctx.request, ctx.svc, SESSION_COOKIE)
    return response


@page()
async def switch_environment(ctx: Ctx) -> Response:
    try:
        chosen = Environment(field(ctx, "environment"))
    except ValueError:
        chosen = ctx.environment
    response = redirect(safe_next(field(ctx, "next")))
    set_cookie(response, ctx.request, ctx.svc, ENV_COOKIE, chosen.value, ENV_COOKIE_TTL)
    return response
