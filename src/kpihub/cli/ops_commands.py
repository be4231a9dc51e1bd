"""Operations: ``kpihub backup``, ``kpihub restore`` and ``kpihub retention ...``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.filesize import decimal

from kpihub import retention
from kpihub.cli._run import (
    JsonOpt,
    TenantOpt,
    emit_json,
    fail,
    out,
    settings,
    table,
    when,
    with_storage,
)
from kpihub.domain import Tenant
from kpihub.errors import KpihubError
from kpihub.settings import Settings
from kpihub.storage import backups
from kpihub.storage.urls import display_url

T = TypeVar("T")

retention_app = typer.Typer(
    help="How long each tenant's data is kept, and the purge that deletes older data."
)
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace what is there")]
OptionalTenant = Annotated[
    str | None, typer.Option("--tenant", "-t", help="One tenant (default: every tenant)")
]


def _run(fn: Callable[[Settings], T]) -> T:
    cfg = settings()
    try:
        return fn(cfg)
    except KpihubError as exc:
        fail(exc.message)


def _key_note(cfg: Settings) -> str:
    where = (
        "KPIHUB_SECRET_KEY"
        if cfg.secret_key is not None
        else f"the key file {cfg.secret_key_file} (KPIHUB_SECRET_KEY_FILE)"
    )
    return (
        f"Keep the server key, {where}, with it: it is not in the database, and without "
        "it no client secret can be checked."
    )


def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (must not exist)")],
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up the whole database (KPIHUB_DATABASE_URL) to PATH, while the server runs.

    SQLite: an online backup (a SQLite file). PostgreSQL: pg_dump --format=custom.
    """
    info = _run(lambda cfg: backups.backup(cfg.database_url, path, force=force))
    if as_json:
        emit_json(info)
        return
    out.print(
        f"Backed up {display_url(settings().database_url)} (schema {info.revision}) to "
        f"{info.path} ({decimal(info.bytes)}, {info.format}).",
        highlight=False,
        soft_wrap=True,
    )
    out.print(_key_note(settings()), highlight=False, soft_wrap=True)


def restore(
    path: Annotated[Path, typer.Argument(help="A file made by 'kpihub backup'")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that holds data")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into the database KPIHUB_DATABASE_URL names (a fresh one).

    An older schema is upgraded with the migrations. Stop every server using the
    database before restoring into it.
    """
    info = _run(lambda cfg: backups.restore(cfg.database_url, path, force=force))
    if as_json:
        emit_json(info)
        return
    upgraded = f"upgraded to {info.upgraded_to}" if info.upgraded_to != info.revision else "current"
    out.print(
        f"Restored {info.path} (schema {info.revision}, {upgraded}) into "
        f"{display_url(settings().database_url)}: {info.tenants} tenant(s), "
        f"{info.data_points} data point(s).",
        highlight=False,
        soft_wrap=True,
    )


def _retention_rows(tenants: list[Tenant]) -> list[dict[str, object]]:
    return [{"tenant": t.name, "days": t.retention_days} for t in tenants]


@retention_app.command("set")
def retention_set(
    tenant: TenantOpt,
    days: Annotated[str, typer.Option("--days", help="Keep this many days of data (1-36500)")],
    as_json: JsonOpt = False,
) -> None:
    """Keep DAYS days of a tenant's data; older points and requests are purged."""
    number = _run(lambda _: retention.parse_days(tenant, days))
    t = with_storage(lambda s, _: retention.set_retention(s, tenant, number))
    if as_json:
        emit_json(_retention_rows([t])[0])
        return
    out.print(
        f"{t.name} keeps {t.retention_days} days of data: data points with an older "
        "timestamp, and requests received earlier, are purged.",
        highlight=False,
    )


@retention_app.command("clear")
def retention_clear(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Keep a tenant's data forever (no retention)."""
    t = with_storage(lambda s, _: retention.clear_retention(s, tenant))
    if as_json:
        emit_json(_retention_rows([t])[0])
        return
    out.print(f"{t.name} keeps its data forever (no retention).", highlight=False)


@retention_app.command("show")
def retention_show(tenant: OptionalTenant = None, as_json: JsonOpt = False) -> None:
    """Show each tenant's retention."""
    tenants = with_storage(lambda s, _: retention.tenants(s, tenant))
    if as_json:
        emit_json(_retention_rows(tenants))
        return
    table(
        "Retention",
        ["tenant", "keeps"],
        [
            (t.name, "forever" if t.retention_days is None else f"{t.retention_days} days")
            for t in tenants
        ],
    )


@retention_app.command("purge")
def retention_purge(
    tenant: OptionalTenant = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete data older than each tenant's retention (the server also does it itself,
    every 5 minutes, unless KPIHUB_RETENTION_PURGE=false)."""
    reports = with_storage(lambda s, _: retention.purge(s, tenant, dry_run=dry_run))
    if as_json:
        emit_json(reports)
        return
    verb = "would delete" if dry_run else "deleted"
    table(
        "Retention purge" + (" (dry run: nothing deleted)" if dry_run else ""),
        ["tenant", "keeps", "cutoff (UTC)", f"points {verb}", f"requests {verb}"],
        [(r.tenant, f"{r.days} days", when(r.cutoff), r.points, r.batches) for r in reports],
    )
    if not reports:
        out.print("No tenant has a retention; nothing to purge.")


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
    app.add_typer(retention_app, name="retention")
