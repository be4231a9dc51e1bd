"""``kpihub``: the command line entry point."""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
from typing import Annotated, cast

import typer

from kpihub import admin
from kpihub.cli._run import (
    emit_json,
    migrate,
    out,
    schema_ready,
    settings,
    wait_for_store,
    with_storage,
)
from kpihub.cli.admin_commands import client_app, integration_app, tenant_app
from kpihub.cli.key_commands import keys_app
from kpihub.cli.ops_commands import register as register_ops_commands
from kpihub.cli.push_commands import register as register_push_commands
from kpihub.cli.user_commands import user_app
from kpihub.domain import Environment
from kpihub.errors import Conflict
from kpihub.logs import configure_logging
from kpihub.settings import Settings
from kpihub.storage import Storage

app = typer.Typer(
    help="kpihub: KPI integration platform (server and administration).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.")
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(integration_app, name="integration")
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")
register_push_commands(app)
register_ops_commands(app)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="A revision id, or head")] = "head",
) -> None:
    """Apply schema migrations (KPIHUB_DATABASE_URL)."""
    before, after = migrate(settings().database_url, revision)
    out.print(f"Schema at revision {after} (was {before or 'empty'}).")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
) -> None:
    """Serve the API (KPIHUB_* settings; options override them)."""
    import asyncio
    import functools
    import os

    import uvicorn

    from kpihub.http.protocol import HeadLimitedHttpToolsProtocol

    cfg = settings()
    # ``is None``, not ``or``: ``--port 0`` (any free port) must not fall back to the setting.
    host = cfg.host if host is None else host
    port = cfg.port if port is None else port
    workers = cfg.workers if workers is None else workers
    configure_logging(cfg)  # again in each worker, by the app factory
    if workers > 1 and cfg.redis_url.startswith("memory"):
        logging.getLogger("kpihub").warning(
            "--workers %d with in-memory rate limits: each worker counts on its own, so a "
            "client may get up to %d times its limit. Set KPIHUB_REDIS_URL to share them.",
            workers,
            workers,
        )
    wait_for_store(cfg.database_url, cfg.store_start_timeout)
    if cfg.auto_migrate:
        schema_ready(cfg.database_url)  # once here, not in every worker
        os.environ["KPIHUB_AUTO_MIGRATE"] = "false"
    uvicorn.run(
        "kpihub.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=cfg.log_level,
        log_config=None,  # uvicorn's lines go through configure_logging's handler
        loop="auto",
        # httptools with the request head bounded in size (431) and time (408).
        http=cast(
            "type[asyncio.Protocol]",
            functools.partial(
                HeadLimitedHttpToolsProtocol,
                head_limit=cfg.max_header_bytes,
                head_timeout=cfg.header_read_timeout,
            ),
        ),
        access_log=False,
        server_header=False,
    )


DEMO_TENANT = "demo"
DEMO_INTEGRATION = "demo-pos"
DEMO_CLIENT = "quickstart"


@app.command()
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Set up the demo tenant with a fresh testing client and print a curl pair to try it."""

    async def run(s: Storage, cfg: Settings) -> admin.IssuedSecret:
        for make in (
            lambda: admin.create_tenant(s, DEMO_TENANT),
            lambda: admin.create_integration(s, DEMO_TENANT, DEMO_INTEGRATION),
        ):
            with contextlib.suppress(Conflict):  # already set up by an earlier run
                await make()
        tenant = await admin.tenant(s, DEMO_TENANT)
        for old in await s.list_clients(tenant.id):
            if old.name == DEMO_CLIENT and old.active:
                await admin.revoke_client(s, old.client_id)
        return await admin.create_client(
            s,
            cfg.server_key(),
            tenant_name=DEMO_TENANT,
            environment=Environment.TESTING,
            name=DEMO_CLIENT,
        )

    issued = with_storage(run)
    cfg = settings()
    base = f"http://{DEMO_TENANT}.{cfg.base_domain}:{cfg.port}"
    if as_json:
        emit_json(
            {
                "base_url": base,
                "client_id": issued.client.client_id,
                "client_secret": issued.secret,
                "type": DEMO_INTEGRATION,
            }
        )
        return
    from kpihub.examples import article_example

    body = article_example()
    body["type"] = DEMO_INTEGRATION
    token_cmd = (
        f"TOKEN=$(curl -s {base}/oauth/token -H 'Content-Type: application/x-www-form-urlencoded' "
        f"-d grant_type=client_credentials -d client_id={issued.client.client_id} "
        f"-d client_secret={issued.secret} | python3 -c 'import json,sys; "
        'print(json.load(sys.stdin)["access_token"])\')'
    )
    kpi_cmd = (
        f'curl -s {base}/api/external/v1/kpi -H "Authorization: Bearer $TOKEN" '
        "-H 'Accept: application/json' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body))}"
    )
    out.print(
        f"Tenant [bold]{DEMO_TENANT}[/], integration identifier [bold]{DEMO_INTEGRATION}[/], "
        "testing environment."
    )
    out.print(f"client_id:     {issued.client.client_id}", highlight=False)
    out.print(f"client_secret: {issued.secret}", highlight=False)
    out.print("\nTry it (after the server has started):\n", highlight=False)
    print(token_cmd)
    print(kpi_cmd)
    print()


def main() -> None:
    app()
