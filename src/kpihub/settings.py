"""The one settings object, read from ``KPIHUB_*`` environment variables.

Build it once (``Settings()``) at the edge — the CLI or the ASGI factory — and pass it
down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_API_VERSIONS: tuple[str, ...] = ("v1",)
"""The ingestion API versions served, oldest first. The one place they are listed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KPIHUB_", extra="ignore")

    # Storage and shared state; URL schemes pick the backend.
    database_url: str = Field(
        "sqlite:///kpihub.db",
        description="sqlite:///relative.db, sqlite:////absolute.db (postgresql:// later)",
    )
    database_pool_size: int = Field(10, ge=1, description="PostgreSQL connections per process")
    database_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds before a PostgreSQL operation (waiting for a connection, "
        "connecting, its statements) gives up with a 503, and before SQLite gives up "
        "waiting for another process's write lock",
    )
    store_start_timeout: float = Field(
        60.0,
        ge=0,
        description="Seconds 'kpihub serve' waits at start for a PostgreSQL store that does "
        "not answer yet (still starting, as at boot), retrying and logging each attempt; "
        "0 = exit at once. SQLite is not waited for",
    )
    redis_url: str = Field(
        "memory://",
        description="Rate-limit counters: memory:// (this process) or redis://host:port/db "
        "(shared by every node; also rediss:// and redis+unix://)",
    )
    redis_key_prefix: str = Field(
        "kpihub",
        min_length=1,
        description="Prefix of every Redis key, so several deployments can share one Redis",
    )
    redis_failure_policy: Literal["open", "closed"] = Field(
        "open",
        description="While Redis cannot be reached: open = throttle from this node's memory "
        "(limits hold per node); closed = refuse requests with 503",
    )
    auto_migrate: bool = Field(True, description="Apply schema migrations when the server starts")
    sqlite_synchronous: Literal["normal", "full"] = Field(
        "full",
        description="full: fsync the WAL on every commit (survives power loss); "
        "normal: survives a process crash, may lose the last commits on power loss",
    )
    sqlite_mmap_size: int = Field(
        1 << 30,
        ge=0,
        description="Bytes of the SQLite database the server's queries map into memory "
        "(faster reads; 0 = read through the file)",
    )

    # Tenancy and URLs.
    base_domain: str = "localhost"
    public_scheme: Literal["http", "https"] = Field(
        "http", description="Scheme of the public tenant URLs; it is part of the token issuer"
    )
    trust_forwarded_headers: bool = Field(
        False, description="Honour X-Forwarded-Host/-Proto/-For (only behind a trusted proxy)"
    )
    default_timezone: str = "UTC"

    # Secrets and tokens.
    secret_key: SecretStr | None = Field(
        None, description="Server key for hashing client secrets (HMAC-SHA-256)"
    )
    secret_key_file: Path = Field(
        Path("kpihub-secret.key"), description="Where the server key is kept when not given"
    )
    token_ttl: int = Field(3600, ge=60, le=86400)

    # Throttling (requests per minute).
    rate_limit: int = Field(180, ge=1, description="API requests per minute per client")
    rate_limit_window: int = Field(60, ge=1, description="Seconds per throttle window")
    token_rate_limit_per_client: int = Field(60, ge=1)
    token_rate_limit_per_address: int = Field(600, ge=1)
    auth_failure_limit_per_address: int = Field(120, ge=1)

    # Request limits.
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_elements: int = Field(10_000, ge=1)
    body_read_timeout: float = Field(
        60.0, gt=0, description="Seconds a client has to send a whole request body (then 408)"
    )
    max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="Bytes of a request's line and headers (kpihub serve answers 431 above)",
    )
    header_read_timeout: float = Field(
        20.0,
        gt=0,
        description="Seconds a connection has to send a request's line and headers, from "
        "its start or the previous response (kpihub serve closes it after)",
    )
    idempotency_ttl: int = Field(86_400, ge=60)
    debug_body_bytes: int = Field(
        1024 * 1024, ge=0, description="Bytes of a rejected body kept for the debugger"
    )
    retention_purge: bool = Field(
        True,
        description="The server's housekeeping deletes data past each tenant's retention "
        "(off: run 'kpihub retention purge' yourself)",
    )

    # Dashboard.
    dashboard_session_ttl: int = Field(
        12 * 3600, ge=300, le=30 * 86400, description="Seconds a dashboard sign-in lasts"
    )
    dashboard_login_limit_per_address: int = Field(
        30, ge=1, description="Dashboard sign-in attempts per window per source address"
    )
    dashboard_login_failures_per_account: int = Field(
        5, ge=1, description="Failed dashboard sign-ins per window per email of a tenant"
    )

    # Server.
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(1, ge=1)
    log_level: str = "info"
    log_format: Literal["json", "console"] = Field(
        "json",
        description="json: one JSON object per line on stderr (for log collectors); "
        "console: aligned, human-readable lines",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"KPIHUB_DEFAULT_TIMEZONE={value!r} is not an IANA time zone; "
                "use e.g. 'UTC' or 'Europe/Copenhagen'"
            ) from exc
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_limiter_store(cls, value: str) -> str:
        scheme = value.removeprefix("async+").partition("://")[0]
        if "://" not in value or scheme not in ("memory", "redis", "rediss", "redis+unix"):
            raise ValueError(
                f"KPIHUB_REDIS_URL={value!r} is not a rate-limit store URL; use 'memory://' "
                "(one node) or 'redis://host:6379/0' (rediss:// for TLS)"
            )
        return value

    @field_validator("base_domain")
    @classmethod
    def _bare_domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not value or "/" in value or ":" in value:
            raise ValueError(
                f"KPIHUB_BASE_DOMAIN={value!r} must be a bare domain such as 'example.com' "
                "(no scheme, port or path)"
            )
        return value

    def server_key(self) -> bytes:
        """The key for hashing client secrets: from the setting, else a 0600 file made once."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with path.open("x", encoding="ascii") as fh:
                    path.chmod(0o600)
                    fh.write(secrets.token_hex(32))
            except FileExistsError:
                pass  # another process made it first; read theirs
        return path.read_text(encoding="ascii").strip().encode()
