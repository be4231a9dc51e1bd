"""Tenants, integration identifiers and OAuth clients."""

from __future__ import annotations

from typing import Annotated

import typer

from kpihub import admin
from kpihub.cli._run import JsonOpt, TenantOpt, emit_json, fail, out, table, when, with_storage
from kpihub.domain import Client, Environment, Integration
from kpihub.settings import Settings
from kpihub.storage import Storage

ClientArg = Annotated[str, typer.Argument(help="The client_id")]

tenant_app = typer.Typer(help="Tenants: one per client organisation, served at NAME.BASE_DOMAIN.")
integration_app = typer.Typer(help="Integration identifiers (the 'type' field of KPI batches).")
client_app = typer.Typer(help="OAuth clients: one per tenant and environment.")


@tenant_app.command("create")
def tenant_create(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The subdomain: lowercase letters, digits, inner hyphens"
        ),
    ],
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA zone for 'Y-m-d H:i:s' times [default: KPIHUB_DEFAULT_TIMEZONE]"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant."""
    t = with_storage(lambda s, cfg: admin.create_tenant(s, name, timezone or cfg.default_timezone))
    if as_json:
        emit_json(t)
    else:
        out.print(f"Created tenant [bold]{t.name}[/] (time zone {t.timezone}).")


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False) -> None:
    """List tenants."""
    tenants = with_storage(lambda s, _: s.list_tenants())
    if as_json:
        emit_json(tenants)
    else:
        table(
            "Tenants",
            ["name", "timezone", "created"],
            [(t.name, t.timezone, when(t.created_at)) for t in tenants],
        )


@integration_app.command("create")
def integration_create(
    identifier: Annotated[
        str, typer.Argument(metavar="IDENTIFIER", help="The value vendors send as 'type'")
    ],
    tenant: TenantOpt,
    as_json: JsonOpt = False,
) -> None:
    """Register an integration identifier for a tenant."""
    i = with_storage(lambda s, _: admin.create_integration(s, tenant, identifier))
    if as_json:
        emit_json(i)
    else:
        out.print(f"Registered integration identifier [bold]{i.identifier}[/] for {tenant}.")


@integration_app.command("list")
def integration_list(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """List a tenant's integration identifiers."""

    async def run(s: Storage, _: Settings) -> list[Integration]:
        t = await admin.tenant(s, tenant)
        return await s.list_integrations(t.id)

    items = with_storage(run)
    if as_json:
        emit_json(items)
    else:
        table(
            f"Integration identifiers of {tenant}",
            ["identifier", "created"],
            [(i.identifier, when(i.created_at)) for i in items],
        )


def _show_secret(issued: admin.IssuedSecret, as_json: bool, verb: str) -> None:
    c = issued.client
    if as_json:
        emit_json(
            {
                "client_id": c.client_id,
                "client_secret": issued.secret,
                "environment": c.environment.value,
                "scopes": list(c.scopes),
            }
        )
        return
    out.print(f"{verb} client [bold]{c.name}[/] ({c.environment.value}).")
    out.print(f"client_id:     {c.client_id}", highlight=False)
    out.print(f"client_secret: {issued.secret}", highlight=False)
    out.print("[yellow]The secret is shown once; store it now.[/]")


@client_app.command("create")
def client_create(
    tenant: TenantOpt,
    env: Annotated[Environment, typer.Option("--env", help="testing or production")],
    name: Annotated[str, typer.Option(help="A label, e.g. the vendor's system")],
    scope: Annotated[list[str] | None, typer.Option(help="Allowed scopes (default: all)")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute")] = None,
    token_ttl: Annotated[int | None, typer.Option(help="Token lifetime in seconds")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a client; prints its client_id and client_secret (once)."""

    async def run(s: Storage, cfg: Settings) -> admin.IssuedSecret:
        return await admin.create_client(
            s,
            cfg.server_key(),
            tenant_name=tenant,
            environment=env,
            name=name,
            scopes=scope,
            rate_limit=rate_limit,
            token_ttl=token_ttl,
        )

    _show_secret(with_storage(run), as_json, "Created")


@client_app.command("list")
def client_list(
    tenant: TenantOpt,
    env: Annotated[Environment | None, typer.Option("--env")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a tenant's clients."""

    async def run(s: Storage, _: Settings) -> list[Client]:
        t = await admin.tenant(s, tenant)
        return [c for c in await s.list_clients(t.id) if env is None or c.environment == env]

    clients = with_storage(run)
    if as_json:
        emit_json(clients)
        return
    table(
        f"Clients of {tenant}",
        ["client_id", "env", "name", "scopes", "rate/min", "state", "old secret", "last used"],
        [
            (
                c.client_id,
                c.environment.value,
                c.name,
                " ".join(c.scopes),
                c.rate_limit or "default",
                "active" if c.active else "revoked",
                "valid" if c.old_secret_hash else "",
                when(c.last_used_at),
            )
            for c in clients
        ],
    )


@client_app.command("rotate-secret")
def client_rotate(client_id: ClientArg, as_json: JsonOpt = False) -> None:
    """Issue a new secret; the old one stays valid until retire-old-secret."""
    issued = with_storage(lambda s, cfg: admin.rotate_secret(s, cfg.server_key(), client_id))
    _show_secret(issued, as_json, "Rotated the secret of")


def _done(c: Client, as_json: bool, message: str) -> None:
    if as_json:
        emit_json(c)
    else:
        out.print(message)


@client_app.command("retire-old-secret")
def client_retire(client_id: ClientArg, as_json: JsonOpt = False) -> None:
    """Stop accepting the secret that was replaced by rotate-secret."""
    c = with_storage(lambda s, _: admin.retire_old_secret(s, client_id))
    _done(c, as_json, f"The old secret of {client_id} is no longer accepted.")


@client_app.command("revoke")
def client_revoke(client_id: ClientArg, as_json: JsonOpt = False) -> None:
    """Revoke a client: its secrets and every token it holds stop working at once."""
    c = with_storage(lambda s, _: admin.revoke_client(s, client_id))
    _done(c, as_json, f"Revoked {client_id}; its tokens are no longer accepted.")


@client_app.command("set-rate-limit")
def client_rate(
    client_id: ClientArg,
    per_minute: Annotated[str, typer.Argument(help="Requests per minute, or 'default'")],
    as_json: JsonOpt = False,
) -> None:
    """Change a client's rate limit."""
    if per_minute == "default":
        value: int | None = None
    # isascii: str.isdigit() accepts '²', which int() then rejects with a traceback.
    elif per_minute.isascii() and per_minute.isdigit() and int(per_minute) >= 1:
        value = int(per_minute)
    else:
        fail(f"PER_MINUTE: {per_minute!r} is not valid. Give a positive whole number or 'default'.")
    c = with_storage(lambda s, _: admin.set_rate_limit(s, client_id, value))
    _done(c, as_json, f"{client_id}: {c.rate_limit or 'default'} requests per minute.")
