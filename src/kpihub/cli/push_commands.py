"""``kpihub push | validate | token | ping``: the vendor's side, on the client SDK only.

Connection settings come from options, else the environment (``KPIHUB_URL``,
``KPIHUB_CLIENT_ID``, ``KPIHUB_CLIENT_SECRET``, ``KPIHUB_SCOPE``), else a TOML
file given with ``--config`` (keys ``url``, ``client_id``, ``client_secret``,
``scope``, and for push ``type``, ``version``, ``context``, ``outbox``).
"""

from __future__ import annotations

import json
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import stamina.instrumentation
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from kpihub.client import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    Ack,
    ApiError,
    AuthenticationError,
    Batch,
    KpiClient,
    KpiConnectionError,
    KpiError,
    NotFoundError,
    Outbox,
    check_batches,
    make_batches,
    read_input,
    token_claims,
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_NOT_ACKNOWLEDGED = 1
EXIT_INVALID_INPUT = 2

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file with url, client_id, client_secret...")
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="KPIHUB_URL", help="Tenant URL, e.g. https://acme.example.com"),
]
IdOpt = Annotated[str | None, typer.Option("--client-id", envvar="KPIHUB_CLIENT_ID")]
SecretOpt = Annotated[
    str | None, typer.Option("--client-secret", envvar="KPIHUB_CLIENT_SECRET", show_envvar=True)
]
ScopeOpt = Annotated[
    str | None, typer.Option("--scope", envvar="KPIHUB_SCOPE", help="e.g. kpi:write")
]


def _fail(message: str, code: int = EXIT_NOT_ACKNOWLEDGED) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(f"cannot read the config file {path}: {exc}", EXIT_INVALID_INPUT) from None


@dataclass(frozen=True)
class Connection:
    url: str
    client_id: str
    client_secret: str
    scope: str | None


def _connection(
    config: dict[str, Any],
    url: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> Connection:
    values = {
        "url": url or config.get("url"),
        "client_id": client_id or config.get("client_id"),
        "client_secret": client_secret or config.get("client_secret"),
    }
    missing = [k for k, v in values.items() if not v]
    if missing:
        names = ", ".join(f"--{k.replace('_', '-')} (KPIHUB_{k.upper()})" for k in missing)
        raise _fail(f"missing {names}; give them as options, in the environment or in --config.", 2)
    parts = urlsplit(str(values["url"]))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(
            f"--url {values['url']!r} must be your tenant's URL, e.g. https://acme.example.com", 2
        )
    return Connection(
        str(values["url"]).rstrip("/"),
        str(values["client_id"]),
        str(values["client_secret"]),
        scope or config.get("scope"),
    )


def _say_retry(details: stamina.instrumentation.RetryDetails) -> None:
    cause = details.caused_by
    what = str(cause) if isinstance(cause, ApiError) else f"{type(cause).__name__}: {cause}"
    err.print(f"retry {details.retry_num} in {details.wait_for:.1f} s after {what}")


def _client(conn: Connection, **options: Any) -> KpiClient:
    # Retries are told on stderr in words, not as the library's log records.
    stamina.instrumentation.set_on_retry_hooks([_say_retry])
    return KpiClient(conn.url, conn.client_id, conn.client_secret, scope=conn.scope, **options)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed or 0.0
        return Text(f"{speed:,.0f} elements/s")


def _print_api_error(exc: ApiError, batch: Batch | None) -> None:
    err.print(f"[bold red]error:[/] the server answered HTTP {exc.status}: {exc.message}")
    for path, messages in exc.errors.items():
        where = batch.origin(path) if batch is not None else None
        for message in messages:
            err.print(f"  {where + ': ' if where else ''}{path}: {message}")


def push(
    file: Annotated[Path | None, typer.Argument(help="JSON body, NDJSON or CSV")] = None,
    url: UrlOpt = None,
    client_id: IdOpt = None,
    client_secret: SecretOpt = None,
    scope: ScopeOpt = None,
    config: ConfigOpt = None,
    type_: Annotated[str | None, typer.Option("--type", help="Integration identifier")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    context: Annotated[str | None, typer.Option("--context")] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="json, ndjson or csv (default: by extension)")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Elements per request")
    ] = DEFAULT_MAX_ELEMENTS,
    max_bytes: Annotated[
        int, typer.Option(min=1024, help="Bytes per request body (before gzip)")
    ] = DEFAULT_MAX_BYTES,
    outbox: Annotated[
        Path | None, typer.Option(help="SQLite file keeping batches until acknowledged")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Send what the outbox still holds")
    ] = False,
    gzip: Annotated[bool, typer.Option("--gzip/--no-gzip")] = True,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Check the data before sending")
    ] = True,
    timezone: Annotated[str, typer.Option(help="The tenant's time zone, for checking")] = "UTC",
    retry_timeout: Annotated[
        float, typer.Option(help="Seconds to keep retrying one request")
    ] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout")] = False,
) -> None:
    """Send a file of KPI data: batched, paced under the rate limit, retried, resumable."""
    cfg = _config(config)
    conn = _connection(cfg, url, client_id, client_secret, scope)
    outbox_path = outbox or (Path(cfg["outbox"]) if cfg.get("outbox") else None)
    box = Outbox(outbox_path or ":memory:")
    target = f"{conn.url} {conn.client_id}"
    if file is None and not resume:
        raise _fail("give a FILE to push, or --resume to send what the outbox holds.", 2)
    if resume and outbox_path is None:
        raise _fail("--resume needs --outbox PATH (the file an earlier push used).", 2)
    if file is not None:
        header = {
            k: v
            for k, v in {
                "type": type_ or cfg.get("type"),
                "version": version or cfg.get("version"),
                "context": context or cfg.get("context"),
            }.items()
            if v is not None
        }
        batches = _read_batches(file, format_, header, batch_size, max_bytes, timezone, validate)
        box.add(target, batches)
    pending, elements = box.count(target)
    others = [(t, n) for t, n in box.targets() if t != target]
    for other, n in others:
        err.print(f"note: the outbox also holds {n} batches for {other}; they are not sent here.")
    if pending == 0:
        out.print("Nothing to send.")
        return
    started = time.monotonic()
    acks: list[Ack] = []
    failure: KpiError | None = None
    with (
        _client(conn, gzip=gzip, max_elements=batch_size, retry_timeout=retry_timeout) as client,
        Progress(
            TextColumn("[bold]push"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=as_json or not err.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("push", total=elements)
        try:
            for seq, batch in box.pending(target):
                try:
                    ack = client.send_batch(batch)
                except ApiError as exc:
                    if exc.status in (400, 413, 415, 422):  # this batch will never be accepted
                        box.reject(seq, exc.status, exc.errors or {"": [exc.message]})
                    _print_api_error(exc, batch)
                    failure = exc
                    break
                except KpiError as exc:
                    err.print(f"[bold red]error:[/] {exc.message}")
                    failure = exc
                    break
                box.done(seq)
                acks.append(ack)
                progress.advance(task, batch.elements)
        except KeyboardInterrupt:
            failure = KpiError("interrupted")
    total = Ack.combine(acks)
    left, left_elements = box.count(target)
    summary = {
        "ok": failure is None and left == 0,
        "batches": total.requests,
        "received": total.received,
        "created": total.created,
        "updated": total.updated,
        "unchanged": total.unchanged,
        "pending_batches": left,
        "pending_elements": left_elements,
        "rejected_batches": box.rejected(),
        "requests": client.stats.requests,
        "retries": client.stats.retries,
        "tokens_fetched": client.stats.tokens_fetched,
        "throttled_seconds": round(client.stats.throttled_seconds, 3),
        "statuses": {str(k): v for k, v in sorted(client.stats.statuses.items())},
        "seconds": round(time.monotonic() - started, 3),
    }
    box.close()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        _print_summary(summary, outbox_path)
    if not summary["ok"]:
        raise typer.Exit(EXIT_NOT_ACKNOWLEDGED)


def _read_batches(
    file: Path,
    format_: str | None,
    header: dict[str, Any],
    batch_size: int,
    max_bytes: int,
    timezone: str,
    validate: bool,
) -> list[Batch]:
    if not file.is_file():
        raise _fail(f"no such file: {file}", EXIT_INVALID_INPUT)
    try:
        found = read_input(file, format_, timezone=timezone)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_INVALID_INPUT) from None
    if found.problems:
        for problem in found.problems:
            err.print(f"{file}: {problem}")
        raise _fail(f"{file} cannot be read ({len(found.problems)} problems).", EXIT_INVALID_INPUT)
    merged = {**found.header, **header}
    missing = [k for k in ("type", "version", "context") if k not in merged]
    if missing:
        raise _fail(
            f"{file} does not carry {', '.join(missing)}; give "
            + " ".join(f"--{k}" for k in missing),
            EXIT_INVALID_INPUT,
        )
    if not found.rows:
        raise _fail(f"{file} holds no elements.", EXIT_INVALID_INPUT)
    try:
        batches = list(
            make_batches(
                {k: merged[k] for k in ("type", "version", "context")},
                found.rows,
                max_elements=batch_size,
                max_bytes=max_bytes,
            )
        )
    except ValueError as exc:
        raise _fail(str(exc), EXIT_INVALID_INPUT) from None
    if validate:
        problems = check_batches(batches, timezone=timezone)
        if problems:
            for found_problem in problems:
                err.print(f"{file}: {found_problem}")
            raise _fail(
                f"{len(problems)} problems in {file}; nothing was sent. Fix them (or push "
                "with --no-validate to let the server decide).",
                EXIT_INVALID_INPUT,
            )
    return batches


def _print_summary(s: dict[str, Any], outbox: Path | None) -> None:
    out.print(
        f"Acknowledged {s['received']:,} elements in {s['batches']} requests in "
        f"{s['seconds']:.1f} s: {s['created']:,} created, {s['updated']:,} updated, "
        f"{s['unchanged']:,} unchanged."
    )
    out.print(
        f"{s['retries']} retries, {s['tokens_fetched']} tokens, waited "
        f"{s['throttled_seconds']:.1f} s to stay under the rate limit; answers: "
        + ", ".join(f"{n}x HTTP {code}" for code, n in s["statuses"].items())
    )
    if s["pending_batches"]:
        where = (
            f"kept in the outbox {outbox}; send them with: kpihub push --resume --outbox {outbox}"
            if outbox
            else "not sent (use --outbox PATH to keep them across runs)"
        )
        err.print(
            f"[bold red]Not acknowledged:[/] {s['pending_elements']:,} elements in "
            f"{s['pending_batches']} batches, {where}"
        )
    if s["rejected_batches"]:
        err.print(
            f"{s['rejected_batches']} batches refused by the server are kept aside in the outbox."
        )


def validate(
    file: Annotated[Path, typer.Argument(help="JSON body, NDJSON or CSV")],
    type_: Annotated[str | None, typer.Option("--type")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    context: Annotated[str | None, typer.Option("--context")] = None,
    format_: Annotated[str | None, typer.Option("--format")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = DEFAULT_MAX_ELEMENTS,
    timezone: Annotated[str, typer.Option(help="The tenant's time zone")] = "UTC",
) -> None:
    """Check a file offline with the server's own rules; every error, with where it is."""
    header = {k: v for k, v in {"type": type_, "version": version, "context": context}.items() if v}
    batches = _read_batches(
        file, format_, header, batch_size, DEFAULT_MAX_BYTES, timezone, validate=True
    )
    elements = sum(b.elements for b in batches)
    out.print(
        f"OK: {elements:,} elements in {len(batches)} requests of at most {batch_size:,} "
        "(whether the type is registered for your tenant is checked by the server)."
    )


def _fetch_token(conn: Connection, *, retry_attempts: int, retry_timeout: float) -> str:
    """An access token, or exit with what is wrong in plain words."""
    with _client(conn, retry_attempts=retry_attempts, retry_timeout=retry_timeout) as client:
        try:
            return client.token()
        except KpiError as exc:
            raise _fail(_diagnose(exc, conn)) from None


def token(
    url: UrlOpt = None,
    client_id: IdOpt = None,
    client_secret: SecretOpt = None,
    scope: ScopeOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Token and its claims as JSON")] = False,
) -> None:
    """Print an access token (e.g. TOKEN=$(kpihub token) for curl)."""
    conn = _connection(_config(config), url, client_id, client_secret, scope)
    value = _fetch_token(conn, retry_attempts=3, retry_timeout=15.0)
    if as_json:
        sys.stdout.write(json.dumps({"access_token": value, "claims": token_claims(value)}) + "\n")
    else:
        sys.stdout.write(value + "\n")


def ping(
    url: UrlOpt = None,
    client_id: IdOpt = None,
    client_secret: SecretOpt = None,
    scope: ScopeOpt = None,
    config: ConfigOpt = None,
    env: Annotated[
        str | None, typer.Option("--env", help="The environment you mean: testing or production")
    ] = None,
) -> None:
    """Check the URL, the credentials and the scopes, and say what is wrong in plain words."""
    conn = _connection(_config(config), url, client_id, client_secret, scope)
    value = _fetch_token(conn, retry_attempts=2, retry_timeout=10.0)
    claims = token_claims(value)
    lifetime = float(claims.get("exp", 0)) - float(claims.get("iat", 0))
    tenant = claims.get("tenant", "?")
    environment = claims.get("env", "?")
    scopes = str(claims.get("scope", "")).split()
    if env is not None and environment != env:
        raise _fail(
            f"wrong environment: client {conn.client_id} belongs to the {environment} "
            f"environment of tenant {tenant}, not {env}. Data it sends is stored as "
            f"{environment} data; use the client you were given for {env}."
        )
    if "kpi:write" not in scopes:
        raise _fail(
            f"missing scope: tokens of client {conn.client_id} carry "
            f"{' '.join(scopes) or 'no scope'}, not kpi:write, so it cannot send KPI data. "
            + (
                "Drop --scope / KPIHUB_SCOPE or include kpi:write in it."
                if conn.scope
                else "Ask your operator for a client allowed kpi:write."
            )
        )
    out.print(
        f"OK: tenant {tenant}, environment {environment}, scopes {' '.join(scopes)} "
        f"(client {conn.client_id}, tokens last {lifetime:.0f} s)."
    )


def _diagnose(exc: KpiError, conn: Connection) -> str:
    host = urlsplit(conn.url).netloc
    if isinstance(exc, KpiConnectionError):
        return (
            f"{exc.message} Check the scheme, host and port, that the "
            f"server is up, and that this machine may connect to it (try: curl {conn.url}/healthz)."
        )
    if isinstance(exc, NotFoundError):
        return (
            f"unknown tenant: the server at {host} serves no tenant of that name "
            f"({exc.message}) The tenant is the first part of the host name, as in "
            "https://TENANT.example.com; check its spelling with your operator."
        )
    if isinstance(exc, AuthenticationError) or (
        isinstance(exc, ApiError) and exc.error == "invalid_client"
    ):
        hint = ""
        if conn.client_id.startswith("kh_test_"):
            hint = " (this client_id is a testing client; production ids start with kh_live_)"
        elif conn.client_id.startswith("kh_live_"):
            hint = " (this client_id is a production client; testing ids start with kh_test_)"
        return (
            f"wrong credentials: {host} refused client {conn.client_id}{hint}. The secret is "
            "wrong or was rotated, the client was revoked, or it belongs to another tenant. "
            f"Server said: {exc.message}"
        )
    if isinstance(exc, ApiError) and exc.error == "invalid_scope":
        return f"scope refused: {exc.message}"
    return f"the server answered: {exc}"


def register(app: typer.Typer) -> None:
    app.command()(push)
    app.command("validate")(validate)
    app.command()(token)
    app.command()(ping)
