"""Dashboard users: ``kpihub user create|list``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kpihub import admin
from kpihub.cli._run import JsonOpt, TenantOpt, emit_json, fail, out, table, when, with_storage
from kpihub.domain import DashboardUser, Role
from kpihub.settings import Settings
from kpihub.storage import Storage
from kpihub.web.passwords import password_problem

user_app = typer.Typer(help="Dashboard users: people who sign in at https://TENANT.BASE_DOMAIN/.")


def _public(user: DashboardUser) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        fail(f"The password is not acceptable: {problem}")
    return password


@user_app.command("create")
def user_create(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="The user's email; they sign in with it")],
    role: Annotated[
        Role, typer.Option(help="admin: everything, credentials too; viewer: data and debugger")
    ] = Role.VIEWER,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin"),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a dashboard user (the password is prompted twice, hidden)."""
    password = _read_password(password_stdin)

    async def run(s: Storage, _: Settings) -> DashboardUser:
        return await admin.create_user(s, tenant, email, password, role)

    user = with_storage(run)
    if as_json:
        emit_json(_public(user))
    else:
        out.print(f"Created {user.role.value} [bold]{user.email}[/] for tenant {tenant}.")


@user_app.command("list")
def user_list(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """List a tenant's dashboard users."""

    async def run(s: Storage, _: Settings) -> list[DashboardUser]:
        t = await admin.tenant(s, tenant)
        return await s.list_users(t.id)

    users = with_storage(run)
    if as_json:
        emit_json([_public(u) for u in users])
        return
    table(
        f"Dashboard users of {tenant}",
        ["email", "role", "created", "last sign-in"],
        [(u.email, u.role.value, when(u.created_at), when(u.last_login_at)) for u in users],
    )
