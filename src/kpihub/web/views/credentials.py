"""Credentials (admins only): clients per environment, secrets, limits, identifiers.

Every action is a use case of ``kpihub.admin`` (the CLI runs the same code), after
checking that the client belongs to this tenant.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable

from starlette.responses import Response

from kpihub import admin
from kpihub.domain import ALL_SCOPES, Client, Environment
from kpihub.errors import Conflict, InvalidInput, KpihubError, NotFound
from kpihub.tenancy import request_host, request_scheme
from kpihub.web.page import Ctx, field, page, redirect, render

MAX_NAME = 100
NOTICES = {
    "retired": "The old secret is no longer accepted.",
    "revoked": "The client is revoked: its secrets and every token it holds stop working now.",
    "rate-limit": "The rate limit is changed; it applies from the client's next request.",
    "integration": "The integration identifier is registered.",
}


def _status(exc: KpihubError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 422


async def _page(ctx: Ctx, *, status: int = 200, error: str | None = None) -> Response:
    clients = await ctx.svc.storage.list_clients(ctx.tenant.id)
    by_env: dict[str, list[Client]] = {e.value: [] for e in Environment}
    for c in clients:
        by_env[c.environment.value].append(c)
    notice = NOTICES.get(ctx.request.query_params.get("done", ""))
    return render(
        ctx,
        "credentials.html",
        status,
        by_env=by_env,
        integrations=await ctx.svc.storage.list_integrations(ctx.tenant.id),
        scopes=ALL_SCOPES,
        notice=notice,
        error=error,
        default_rate_limit=ctx.svc.settings.rate_limit,
    )


@page(admin=True)
async def credentials(ctx: Ctx) -> Response:
    return await _page(ctx)


def _base_url(ctx: Ctx) -> str:
    settings = ctx.svc.settings
    return f"{request_scheme(ctx.request, settings)}://{request_host(ctx.request, settings)}"


async def _show_secret(ctx: Ctx, issued: admin.IssuedSecret, verb: str) -> Response:
    client = issued.client
    base = _base_url(ctx)
    integrations = await ctx.svc.storage.list_integrations(ctx.tenant.id)
    identifier = integrations[0].identifier if integrations else "YOUR-INTEGRATION-IDENTIFIER"
    token_cmd = (
        f"TOKEN=$(curl -s {shlex.quote(base + '/oauth/token')} "
        f"-d grant_type=client_credentials -d client_id={shlex.quote(client.client_id)} "
        f"-d client_secret={shlex.quote(issued.secret)} "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    kpi_cmd = (
        f"curl -s {shlex.quote(base + '/api/external/v1/kpi')} "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        "-d @kpi-request.json"
    )
    return render(
        ctx,
        "secret.html",
        verb=verb,
        client=client,
        secret=issued.secret,
        token_cmd=token_cmd,
        kpi_cmd=kpi_cmd,
        identifier=identifier,
    )


def _rate_limit(text: str) -> int | None:
    if text in ("", "default"):
        return None
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(
            "rate limit", text, "Give requests per minute as a whole number, or leave it empty."
        )
    return int(text)


@page(admin=True)
async def create_client(ctx: Ctx) -> Response:
    assert ctx.form is not None
    try:
        name = field(ctx, "name")
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidInput("name", name, f"Give a label of 1 to {MAX_NAME} characters.")
        try:
            environment = Environment(field(ctx, "environment"))
        except ValueError:
            raise InvalidInput(
                "environment", field(ctx, "environment"), "Choose testing or production."
            ) from None
        scopes = [s for s in ctx.form.getlist("scope") if isinstance(s, str)]
        issued = await admin.create_client(
            ctx.svc.storage,
            ctx.svc.server_key,
            tenant_name=ctx.tenant.name,
            environment=environment,
            name=name,
            scopes=scopes or None,
            rate_limit=_rate_limit(field(ctx, "rate_limit")),
        )
    except KpihubError as exc:
        return await _page(ctx, status=_status(exc), error=exc.message)
    return await _show_secret(ctx, issued, "Created")


async def _own_client(ctx: Ctx) -> Client:
    return await admin.client_of_tenant(
        ctx.svc.storage, ctx.tenant.id, ctx.request.path_params["client_id"]
    )


@page(admin=True)
async def rotate_secret(ctx: Ctx) -> Response:
    try:
        client = await _own_client(ctx)
        issued = await admin.rotate_secret(ctx.svc.storage, ctx.svc.server_key, client.client_id)
    except KpihubError as exc:
        return await _page(ctx, status=_status(exc), error=exc.message)
    return await _show_secret(ctx, issued, "Rotated the secret of")


async def _client_action(
    ctx: Ctx, act: Callable[[Client], Awaitable[object]], done: str
) -> Response:
    """``act`` on the tenant's client named in the form, then back to the list."""
    try:
        await act(await _own_client(ctx))
    except KpihubError as exc:
        return await _page(ctx, status=_status(exc), error=exc.message)
    return redirect(f"/credentials?done={done}")


@page(admin=True)
async def retire_old_secret(ctx: Ctx) -> Response:
    return await _client_action(
        ctx, lambda c: admin.retire_old_secret(ctx.svc.storage, c.client_id), "retired"
    )


@page(admin=True)
async def revoke(ctx: Ctx) -> Response:
    return await _client_action(
        ctx, lambda c: admin.revoke_client(ctx.svc.storage, c.client_id), "revoked"
    )


@page(admin=True)
async def set_rate_limit(ctx: Ctx) -> Response:
    async def act(client: Client) -> None:
        limit = _rate_limit(field(ctx, "rate_limit"))
        await admin.set_rate_limit(ctx.svc.storage, client.client_id, limit)

    return await _client_action(ctx, act, "rate-limit")


@page(admin=True)
async def register_integration(ctx: Ctx) -> Response:
    try:
        await admin.create_integration(ctx.svc.storage, ctx.tenant.name, field(ctx, "identifier"))
    except KpihubError as exc:
        return await _page(ctx, status=_status(exc), error=exc.message)
    return redirect("/credentials?done=integration")
