"""Plumbing shared by the commands: settings, a started store, output, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import stamina
import stamina.instrumentation
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from kpihub.errors import KpihubError, StoreUnavailable
from kpihub.settings import Settings
from kpihub.storage import Storage, open_storage
from kpihub.storage.migrate import current_revision, ensure_schema, upgrade
from kpihub.storage.urls import scheme

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name (its subdomain)")]

out = Console()
err = Console(stderr=True)


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Name the environment variable the operator set, not the Python field.
        problems = "; ".join(
            f"KPIHUB_{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        fail(f"Invalid settings: {problems}")


def fail(message: str, code: int = 1) -> NoReturn:
    # soft_wrap: never hard-wrap a message at the terminal width; values and commands in it
    # must stay copyable and greppable.
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def migrate(database_url: str, revision: str = "head") -> tuple[str | None, str]:
    """``upgrade`` with its errors printed for the operator."""
    try:
        return upgrade(database_url, revision)
    except KpihubError as exc:
        fail(exc.message)


def schema_ready(database_url: str) -> None:
    """Migrate when the schema is behind; errors printed for the operator."""
    try:
        ensure_schema(database_url)
    except KpihubError as exc:
        fail(exc.message)


def wait_for_store(database_url: str, timeout: float) -> None:
    """Return once a PostgreSQL store answers, trying for up to ``timeout`` seconds.

    At boot the database server may still be starting (or be a container started beside
    this one): ``kpihub serve`` waits for it, saying so in its log at every retry, rather
    than exiting at once. SQLite is a local file: nothing to wait for. After ``timeout``
    seconds (0: at once) the last error is printed and the command exits.
    """
    if scheme(database_url) != "postgresql":
        return
    log = logging.getLogger("kpihub")

    def say(details: stamina.instrumentation.RetryDetails) -> None:
        cause = details.caused_by
        reason = cause.message if isinstance(cause, KpihubError) else str(cause)
        log.warning(
            "%s Waiting for it: retry %d in %.1f s (up to %g s in all: "
            "KPIHUB_STORE_START_TIMEOUT).",
            reason,
            details.retry_num,
            details.wait_for,
            timeout,
        )

    hooks = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([say])
    try:
        for attempt in stamina.retry_context(
            on=StoreUnavailable,
            attempts=None if timeout > 0 else 1,
            timeout=timeout if timeout > 0 else None,
            wait_initial=0.5,
            wait_max=2.0,  # the last wait may end past the timeout, by this much at most
            wait_jitter=0.5,
        ):
            with attempt:
                current_revision(database_url)
    except StoreUnavailable as exc:
        waited = f" It did not answer within {timeout:g} s (KPIHUB_STORE_START_TIMEOUT)."
        fail(exc.message + (waited if timeout > 0 else ""))
    finally:
        stamina.instrumentation.set_on_retry_hooks(hooks)


def with_storage(fn: Callable[[Storage, Settings], Awaitable[T]]) -> T:
    """Run ``fn`` against a started store (migrated first when auto-migrate is on)."""
    cfg = settings()

    async def main() -> T:
        storage = open_storage(cfg)
        await storage.start()
        try:
            return await fn(storage, cfg)
        finally:
            await storage.close()

    if cfg.auto_migrate:
        schema_ready(cfg.database_url)
    try:
        return asyncio.run(main())
    except KpihubError as exc:
        fail(exc.message)


def plain(value: Any) -> Any:
    """A JSON-ready copy of a domain object (dataclasses, enums, bytes hidden)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.endswith("_hash") and f.name != "private_pem"
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def when(epoch: int | None) -> str:
    """An epoch in a table cell: ``YYYY-MM-DD HH:MM`` UTC, empty for None."""
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(plain(value), indent=2) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table whose first column (the key: a name or client_id) is never cut short.

    On a terminal the other columns fold to fit; piped output gets the table's natural
    width, one line per row, so ``grep`` and copy-paste see whole values.
    """
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        key_width = max([len(c), *(len(r[i]) for r in cells)]) if i == 0 else None
        t.add_column(c, overflow="fold", no_wrap=i == 0, min_width=key_width)
    for row in cells:
        t.add_row(*row)
    if out.is_terminal:
        out.print(t)
        return
    natural = Measurement.get(out, out.options.update_width(10_000), t).maximum
    Console(width=max(out.width, natural)).print(t)
