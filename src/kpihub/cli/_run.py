"""Plumbing shared by the commands: settings, a started store, output, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from kpihub.errors import KpihubError
from kpihub.settings import Settings
from kpihub.storage import Storage, open_storage
from kpihub.storage.migrate import upgrade

T = TypeVar("T")

out = Console()
err = Console(stderr=True)


def settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        fail(f"Invalid settings: {exc}")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def with_storage(fn: Callable[[Storage, Settings], Awaitable[T]]) -> T:
    """Run ``fn`` against a started store (migrated first when auto-migrate is on)."""
    cfg = settings()

    async def main() -> T:
        if cfg.auto_migrate:
            upgrade(cfg.database_url)
        storage = open_storage(cfg)
        await storage.start()
        try:
            return await fn(storage, cfg)
        finally:
            await storage.close()

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


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(plain(value), indent=2) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    out.print(t)
