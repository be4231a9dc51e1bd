"""PostgreSQL store on asyncpg: a connection pool, one transaction per batch.

PostgreSQL handles concurrent writers itself (and groups their WAL flushes), so each
request writes in its own transaction on a pooled connection; no writer thread. A
batch's elements go in with one statement whatever their number: arrays bound as
parameters and expanded with ``unnest``. Points are sorted by element id first, so
two batches touching the same elements lock rows in the same order and cannot
deadlock each other; a deadlock or serialization failure from elsewhere is retried.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal, TypeVar

import asyncpg
import stamina
from asyncpg.pool import PoolConnectionProxy

from kpihub import domain
from kpihub.errors import Conflict, NotFound, StoreUnavailable
from kpihub.storage import _dashboard_sql, _sql
from kpihub.storage._client_updates import ClientUpdates
from kpihub.storage._dashboard_sql import USER_COLUMNS
from kpihub.storage.base import NullObserver, RenderAck, StoreObserver

Connection = asyncpg.Connection | PoolConnectionProxy
R = TypeVar("R")
BACKEND = "postgresql"


def _dollar(n: int) -> str:
    return f"${n}"


_INSERT_BATCH = _sql.insert_batch_sql(_dollar)
_INSERT_RECORD = _sql.insert_record_sql(_dollar)
_INSERT_CLIENT = _sql.insert_client_sql(_dollar)
_INSERT_USER = _dashboard_sql.insert_user_sql(_dollar)
_CHANGED = (
    "("
    + ", ".join(f"data_points.{c}" for c in _sql.COMPARED)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"excluded.{c}" for c in _sql.COMPARED)
    + ")"
)
_UPSERT = (
    "WITH up AS ("
    f"INSERT INTO data_points ({_sql.POINT_COLUMNS}) "
    "SELECT $1, $2, $3, $4, e, k, o, v, u, usr, loc, t, df, dt, $5, $6 FROM unnest("
    "$7::text[], $8::text[], $9::text[], $10::float8[], $11::text[], $12::text[], "
    "$13::text[], $14::int8[], $15::int8[], $16::int8[]"
    ") AS x(e, k, o, v, u, usr, loc, t, df, dt)"
    + _sql.UPSERT_CONFLICT
    + _CHANGED
    + " RETURNING revision) "
    "SELECT count(*) FILTER (WHERE revision = 1), count(*) FROM up"
)
# Connection trouble means "try again later" (503), never a 2xx: a batch's transaction
# either committed before the answer or the answer is not a success (a commit whose
# confirmation was lost is answered 503 too; the client's resend is an upsert).
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # The connection's protocol state after the server went away mid-statement.
    asyncpg.InternalClientError,
    # Shutting down, starting up, crashed, or a statement cancelled by an operator.
    asyncpg.exceptions.OperatorInterventionError,
    # Too many connections, disk full, out of memory.
    asyncpg.exceptions.InsufficientResourcesError,
    # A standby after a failover: reads work, writes do not until the new primary.
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    # New connections refused: the database was dropped or renamed, the role or its
    # password changed.
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
)
# A connection that saw these is in an unknown state: it is dropped, never reused.
_BROKEN = (asyncio.CancelledError, *_UNAVAILABLE)
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def _storable(*texts: str) -> bool:
    """Whether PostgreSQL can hold these texts: TEXT cannot contain U+0000.

    A lookup by such a key (a client_id from a token request, say) names nothing
    stored, so it finds nothing, as on SQLite, instead of failing with a 500.
    """
    return not any("\x00" in text for text in texts)


async def _no_reset(conn: Connection) -> None:
    return None


@asynccontextmanager
async def _transaction(
    conn: Connection, isolation: Literal["repeatable_read"] | None = None
) -> AsyncIterator[None]:
    """A transaction, committed at the end, rolled back on an error.

    Unlike ``conn.transaction()``, a connection that broke (or ran out of time) is not
    asked to roll back: it may never answer. ``_conn`` drops it, and PostgreSQL rolls
    back a transaction whose connection is gone.
    """
    tx = conn.transaction(isolation=isolation)
    await tx.start()
    try:
        yield
    except _BROKEN:
        raise
    except BaseException:
        await tx.rollback()
        raise
    await tx.commit()


class _IdempotencyTaken(Exception):
    """Another request committed the same Idempotency-Key first; roll this one back."""


class PostgresStorage(ClientUpdates):
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float = 10.0,
        observer: StoreObserver | None = None,
    ) -> None:
        self._url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._observer = observer or NullObserver()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        try:
            # min_size=0: the server starts (and /readyz says why it is not ready)
            # even when PostgreSQL is down; connections are made on first use.
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=0,
                max_size=self._pool_size,
                command_timeout=self._timeout,
                timeout=self._timeout,
                # kpihub leaves no session state behind (no SET, LISTEN, advisory lock
                # or open cursor; transactions end in _transaction), so a connection
                # goes back to the pool without asyncpg's reset round trip, which would
                # wait on a server that stopped answering.
                reset=_no_reset,
            )
        except _UNAVAILABLE as exc:
            self._observer.store_failed(BACKEND, exc)
            raise StoreUnavailable(f"PostgreSQL cannot be reached: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Connection]:
        """A pooled connection for one operation, all of it within the timeout.

        Waiting for a free connection, connecting and every statement share one budget
        (``KPIHUB_DATABASE_TIMEOUT``), so a request meets a dead or frozen server with
        a 503 in that time, however many statements it needed.
        """
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("The store is not started.")
        try:
            async with asyncio.timeout(self._timeout), pool.acquire() as conn:
                try:
                    yield conn
                except _BROKEN:
                    # Closed at once: releasing it normally would wait on a server
                    # that may not answer, past the budget.
                    conn.terminate()
                    raise
        except _UNAVAILABLE as exc:
            self._observer.store_failed(BACKEND, exc)
            raise StoreUnavailable(self._why(exc)) from exc

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return (
                f"PostgreSQL did not answer within {self._timeout:g} s (KPIHUB_DATABASE_TIMEOUT)."
            )
        return f"PostgreSQL cannot be reached: {exc}"

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[Connection]:
        """A connection in a write transaction (``_transaction``), timed from BEGIN until
        COMMIT returned."""
        async with self._conn() as conn:
            began = time.perf_counter()
            async with _transaction(conn):
                yield conn
            self._observer.store_committed(BACKEND, time.perf_counter() - began)

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with self._conn() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._conn() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
            return rows

    async def _execute(self, sql: str, *args: Any) -> str:
        async with self._conn() as conn:
            status: str = await conn.execute(sql, *args)
            return status

    async def ping(self) -> None:
        await self._fetchrow("SELECT 1")

    # -- tenants and integrations --------------------------------------------------

    async def create_tenant(self, name: str, timezone: str, now: int) -> domain.Tenant:
        try:
            row = await self._fetchrow(
                "INSERT INTO tenants (name, timezone, created_at) VALUES ($1, $2, $3) RETURNING id",
                name,
                timezone,
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"Tenant '{name}' already exists.") from exc
        return domain.Tenant(id=row[0], name=name, timezone=timezone, created_at=now)

    async def get_tenant(self, name: str) -> domain.Tenant | None:
        if not _storable(name):
            return None
        row = await self._fetchrow(
            f"SELECT {_sql.TENANT_COLUMNS} FROM tenants WHERE name = $1", name
        )
        return domain.Tenant(*row) if row else None

    async def list_tenants(self) -> list[domain.Tenant]:
        rows = await self._fetch(f"SELECT {_sql.TENANT_COLUMNS} FROM tenants ORDER BY name")
        return [domain.Tenant(*row) for row in rows]

    async def set_retention(self, tenant_id: int, days: int | None) -> domain.Tenant:
        row = await self._fetchrow(
            f"UPDATE tenants SET retention_days = $1 WHERE id = $2 RETURNING {_sql.TENANT_COLUMNS}",
            days,
            tenant_id,
        )
        if row is None:
            raise NotFound(f"No tenant with id {tenant_id}.")
        return domain.Tenant(*row)

    async def create_integration(
        self, tenant_id: int, identifier: str, now: int
    ) -> domain.Integration:
        try:
            row = await self._fetchrow(
                "INSERT INTO integrations (tenant_id, identifier, created_at) "
                "VALUES ($1, $2, $3) RETURNING id",
                tenant_id,
                identifier,
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"Integration identifier '{identifier}' already exists.") from exc
        return domain.Integration(
            id=row[0], tenant_id=tenant_id, identifier=identifier, created_at=now
        )

    async def list_integrations(self, tenant_id: int) -> list[domain.Integration]:
        rows = await self._fetch(
            "SELECT id, tenant_id, identifier, created_at FROM integrations "
            "WHERE tenant_id = $1 ORDER BY identifier",
            tenant_id,
        )
        return [domain.Integration(*row) for row in rows]

    async def integration_exists(self, tenant_id: int, identifier: str) -> bool:
        if not _storable(identifier):
            return False
        row = await self._fetchrow(
            "SELECT 1 FROM integrations WHERE tenant_id = $1 AND identifier = $2",
            tenant_id,
            identifier,
        )
        return row is not None

    # -- clients -------------------------------------------------------------------

    async def create_client(self, new: domain.NewClient) -> domain.Client:
        row = await self._fetchrow(
            f"{_INSERT_CLIENT} RETURNING {_sql.CLIENT_COLUMNS}", *_sql.client_values(new)
        )
        return _sql.client_from_row(row)

    async def get_client(self, client_id: str) -> domain.Client | None:
        if not _storable(client_id):
            return None
        row = await self._fetchrow(
            f"SELECT {_sql.CLIENT_COLUMNS} FROM clients WHERE client_id = $1", client_id
        )
        return _sql.client_from_row(row) if row else None

    async def list_clients(self, tenant_id: int) -> list[domain.Client]:
        rows = await self._fetch(
            f"SELECT {_sql.CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 "
            "ORDER BY environment, created_at, id",
            tenant_id,
        )
        return [_sql.client_from_row(row) for row in rows]

    async def _update_client(self, client_id: str, assignments: str, *params: Any) -> domain.Client:
        numbers = iter(range(1, len(params) + 1))
        assignments = re.sub(r"\?", lambda _: f"${next(numbers)}", assignments)
        row = await self._fetchrow(
            f"UPDATE clients SET {assignments} WHERE client_id = ${len(params) + 1} "
            f"RETURNING {_sql.CLIENT_COLUMNS}",
            *params,
            client_id,
        )
        if row is None:
            raise NotFound(f"No client with client_id '{client_id}'.")
        return _sql.client_from_row(row)

    async def touch_client(self, client_pk: int, now: int) -> None:
        await self._execute("UPDATE clients SET last_used_at = $1 WHERE id = $2", now, client_pk)

    # -- keys and revocation -------------------------------------------------------

    async def signing_keys(self) -> list[domain.SigningKey]:
        rows = await self._fetch(_sql.SELECT_SIGNING_KEYS)
        return [_sql.signing_key_from_row(r) for r in rows]

    async def add_signing_key(self, key: domain.SigningKey) -> None:
        await self._execute(
            "INSERT INTO signing_keys (kid, private_pem, public_jwk, created_at, retired_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kid) DO NOTHING",
            *_sql.signing_key_values(key),
        )

    async def retire_signing_key(self, kid: str, now: int) -> domain.SigningKey:
        status = await self._execute(
            "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $1) WHERE kid = $2",
            now,
            kid,
        )
        if status.endswith(" 0"):
            raise NotFound(f"No signing key with kid '{kid}'.")
        return next(k for k in await self.signing_keys() if k.kid == kid)

    async def revoke_token(self, jti: str, client_pk: int, expires_at: int) -> None:
        await self._execute(
            "INSERT INTO revoked_tokens (jti, client_pk, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (jti) DO NOTHING",
            jti,
            client_pk,
            expires_at,
        )

    async def is_token_revoked(self, jti: str) -> bool:
        if not _storable(jti):
            return False
        return await self._fetchrow("SELECT 1 FROM revoked_tokens WHERE jti = $1", jti) is not None

    async def bearer_context(
        self, tenant_name: str, client_id: str, jti: str
    ) -> domain.BearerContext | None:
        if not _storable(tenant_name):
            return None
        if not _storable(client_id, jti):  # text PostgreSQL cannot hold matches nothing
            client_id = jti = ""
        sql, params = _sql.bearer_sql(_dollar, tenant_name, client_id, jti)
        row = await self._fetchrow(sql, *params)
        return _sql.bearer_from_row(row) if row else None

    # -- ingestion -----------------------------------------------------------------

    @stamina.retry(on=_RETRYABLE, attempts=3, wait_initial=0.01, wait_max=0.1)
    async def ingest(
        self, write: domain.BatchWrite, render: RenderAck
    ) -> tuple[domain.BatchCounts, bytes] | None:
        try:
            async with self._writing() as conn:
                return await _apply_batch(conn, write, render)
        except _IdempotencyTaken:
            return None

    async def idempotent_response(
        self, client_pk: int, key: str, since: int
    ) -> domain.StoredResponse | None:
        if not _storable(key):
            return None
        row = await self._fetchrow(
            "SELECT request_hash, status, body FROM idempotency_keys "
            "WHERE client_pk = $1 AND key = $2 AND created_at >= $3",
            client_pk,
            key,
            since,
        )
        return domain.StoredResponse(row[0], row[1], bytes(row[2])) if row else None

    async def purge_expired(self, idempotency_before: int, now: int) -> int:
        async with self._writing() as conn:
            keys = await conn.execute(
                "DELETE FROM idempotency_keys WHERE created_at < $1", idempotency_before
            )
            tokens = await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < $1", now)
        return int(keys.split()[-1]) + int(tokens.split()[-1])

    async def record_request(self, record: domain.RequestRecord) -> None:
        await self._execute(_INSERT_RECORD, *_sql.record_values(record))

    async def purge_before(
        self, tenant_id: int, before: int, *, dry_run: bool = False, chunk: int = _sql.PURGE_CHUNK
    ) -> domain.PurgeCounts:
        async with self._conn() as conn:
            groups = await _point_groups(conn, tenant_id)
        if dry_run:
            async with self._conn() as conn, _transaction(conn, "repeatable_read"):
                points = 0
                for group in groups:
                    sql, params = _sql.count_old_points_sql(_dollar, tenant_id, group, before)
                    points += int(await conn.fetchval(sql, *params))
                sql, params = _sql.count_old_batches_sql(_dollar, tenant_id, before)
                batches = int(await conn.fetchval(sql, *params))
            return domain.PurgeCounts(points=points, batches=batches)
        # Each chunk is a statement in a transaction of its own (no explicit one): a big
        # purge is many short transactions that autovacuum can clean up behind.
        async with self._conn() as conn:
            # asyncpg prepares statements, and after five runs PostgreSQL may switch to a
            # generic plan, which knows neither the cutoff nor the limit and scans the
            # whole table for each chunk. (Released connections are RESET ALL.)
            await conn.execute("SET plan_cache_mode = force_custom_plan")
            try:
                points = 0
                for group in groups:
                    points += await _drain(
                        conn, partial(_old_points_chunk, tenant_id, group, before, chunk), chunk
                    )
                batches = await _drain(
                    conn, partial(_old_batches_chunk, tenant_id, before, chunk), chunk
                )
            finally:
                await conn.execute("RESET plan_cache_mode")
        return domain.PurgeCounts(points=points, batches=batches)

    async def count_points(self, tenant_id: int, environment: domain.Environment) -> int:
        row = await self._fetchrow(
            "SELECT COUNT(*) FROM data_points WHERE tenant_id = $1 AND environment = $2",
            tenant_id,
            environment.value,
        )
        return int(row[0])

    # -- reads ---------------------------------------------------------------------

    async def _readable(self, flt: domain.PointFilter) -> bool:
        """False when a filter value cannot be stored (NUL), so it matches nothing."""
        texts = [t for t in (flt.type, flt.context, flt.user_id, flt.location_id) if t]
        return _storable(*texts, *flt.kpis)

    async def _select(
        self,
        flt: domain.PointFilter,
        build: Callable[..., tuple[str, list[Any]]],
        from_row: Callable[[Any], R],
    ) -> list[R]:
        """``build(mark, flt, contexts)``'s rows through ``from_row``."""
        if not await self._readable(flt):
            return []
        async with self._conn() as conn:
            sql, params = build(_dollar, flt, await _contexts(conn, flt))
            return [from_row(r) for r in await conn.fetch(sql, *params)]

    async def find_points(
        self,
        flt: domain.PointFilter,
        *,
        after: domain.PointKey | None,
        descending: bool,
        limit: int,
    ) -> list[domain.StoredPoint]:
        build = partial(_sql.points_sql, after=after, descending=descending, limit=limit)
        return await self._select(flt, build, _sql.point_from_row)

    async def slot_aggregates(
        self, flt: domain.PointFilter, *, slot: int, group_by: str | None, with_last: bool
    ) -> list[domain.SlotAggregate]:
        build = partial(
            _sql.slots_sql, slot=slot, group_by=group_by, with_last=with_last, collate=_C
        )
        return await self._select(flt, build, _sql.slot_from_row)

    async def leaderboard(
        self, flt: domain.PointFilter, *, by: str, agg: str, limit: int
    ) -> list[domain.RankedEntry]:
        build = partial(_sql.leaderboard_sql, by=by, agg=agg, limit=limit, collate=_C)
        return await self._select(flt, build, lambda r: _sql.ranked_from_row(r, agg))

    async def catalog(
        self, tenant_id: int, environment: domain.Environment
    ) -> list[domain.CatalogEntry]:
        sql, params = _sql.catalog_sql(_dollar, tenant_id, environment)
        usql, uparams = _sql.catalog_units_sql(_dollar, tenant_id, environment)
        async with self._conn() as conn, _transaction(conn, "repeatable_read"):
            rows = await conn.fetch(sql, *params)
            units = await conn.fetch(usql, *uparams)
        return _sql.catalog_entries(rows, units)

    async def kpi_names(
        self, tenant_id: int, environment: domain.Environment
    ) -> list[tuple[str, str]]:
        async with self._conn() as conn:
            return sorted(await _kpi_names(conn, tenant_id, environment))

    # -- the dashboard -------------------------------------------------------------

    async def create_user(self, new: domain.NewDashboardUser) -> domain.DashboardUser:
        try:
            row = await self._fetchrow(
                f"{_INSERT_USER} RETURNING {USER_COLUMNS}",
                *_dashboard_sql.user_values(new),
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"A user with the email '{new.email}' already exists.") from exc
        return _dashboard_sql.user_from_row(row)

    async def get_user(self, tenant_id: int, email: str) -> domain.DashboardUser | None:
        if not _storable(email):
            return None
        row = await self._fetchrow(
            f"SELECT {USER_COLUMNS} FROM dashboard_users WHERE tenant_id = $1 AND email = $2",
            tenant_id,
            email,
        )
        return _dashboard_sql.user_from_row(row) if row else None

    async def get_user_by_id(self, user_pk: int) -> domain.DashboardUser | None:
        row = await self._fetchrow(
            f"SELECT {USER_COLUMNS} FROM dashboard_users WHERE id = $1", user_pk
        )
        return _dashboard_sql.user_from_row(row) if row else None

    async def list_users(self, tenant_id: int) -> list[domain.DashboardUser]:
        rows = await self._fetch(
            f"SELECT {USER_COLUMNS} FROM dashboard_users WHERE tenant_id = $1 ORDER BY email",
            tenant_id,
        )
        return [_dashboard_sql.user_from_row(r) for r in rows]

    async def record_login(self, user_pk: int, now: int) -> None:
        await self._execute(
            "UPDATE dashboard_users SET last_login_at = $1 WHERE id = $2", now, user_pk
        )

    async def end_sessions(self, user_pk: int, now: int) -> None:
        await self._execute(
            "UPDATE dashboard_users SET sessions_valid_after = $1 WHERE id = $2", now + 1, user_pk
        )

    async def list_requests(self, flt: domain.RequestFilter) -> list[domain.RequestSummary]:
        sql, params = _dashboard_sql.requests_sql(_dollar, flt)
        return [_dashboard_sql.summary_from_row(r) for r in await self._fetch(sql, *params)]

    async def get_request(self, tenant_id: int, batch_id: str) -> domain.RequestDetail | None:
        if not _storable(batch_id):
            return None
        sql, params = _dashboard_sql.request_sql(_dollar, tenant_id, batch_id)
        row = await self._fetchrow(sql, *params)
        return _dashboard_sql.detail_from_row(row) if row else None

    async def hourly_traffic(
        self, tenant_id: int, environment: domain.Environment, since: int
    ) -> list[domain.HourlyTraffic]:
        sql, params = _dashboard_sql.traffic_sql(
            _dollar,
            tenant_id,
            environment,
            since,
            "CAST(FLOOR(received_at / 3600) AS BIGINT) * 3600",
        )
        return [_dashboard_sql.traffic_from_row(r) for r in await self._fetch(sql, *params)]

    async def last_accepted(
        self, tenant_id: int, environment: domain.Environment
    ) -> dict[int, float]:
        sql, params = _dashboard_sql.last_accepted_sql(_dollar, tenant_id, environment)
        return {int(r[0]): float(r[1]) for r in await self._fetch(sql, *params)}


# Text order as Python's (code points): "last" ties and leaderboard ties are broken by
# id, and the answer must not depend on the database's locale.
_C = ' COLLATE "C"'


async def _contexts(conn: Connection, flt: domain.PointFilter) -> list[str] | None:
    if not _sql.needs_contexts(flt):
        return None
    sql, params = _sql.contexts_sql(_dollar, flt.tenant_id, flt.environment)
    return [r[0] for r in await conn.fetch(sql, *params)]


async def _kpi_names(
    conn: Connection, tenant_id: int, environment: domain.Environment
) -> list[tuple[str, str]]:
    """(context, kpi) pairs by loose scans of the time index: one seek each."""
    names: list[tuple[str, str]] = []
    sql, params = _sql.contexts_sql(_dollar, tenant_id, environment)
    for (context,) in await conn.fetch(sql, *params):
        ksql, kparams = _sql.kpis_sql(_dollar, tenant_id, environment, context)
        names += [(context, kpi) for (kpi,) in await conn.fetch(ksql, *kparams)]
    return names


async def _point_groups(conn: Connection, tenant_id: int) -> list[_sql.PointGroup]:
    return [
        (environment, context, kpi)
        for environment in domain.Environment
        for context, kpi in await _kpi_names(conn, tenant_id, environment)
    ]


_FIRST = -(2**62)  # before any timestamp: where the first chunk starts


def _old_points_chunk(
    tenant_id: int, group: _sql.PointGroup, before: int, chunk: int, after: float
) -> tuple[str, list[Any]]:
    """Delete up to ``chunk`` old points of one group from ``ts >= after`` on.

    Rows: how many were chosen, their greatest ``ts`` (where the next chunk starts,
    past the index entries of the rows just deleted, which stay in the index until
    vacuumed), and how many were deleted. The rows are deleted by their ``ctid``
    (a TID scan: no plan can turn it into a scan of the table), with ``ts`` checked
    again on the row itself, so a point re-sent with a recent timestamp while the
    purge runs is not deleted (nor, this time round, one updated at that moment: the
    next purge deletes it).
    """
    b = _sql.Binder(_dollar)
    where = _sql.old_points_where(b, tenant_id, group, before)
    sql = (
        "WITH doomed AS MATERIALIZED (SELECT ctid, ts FROM data_points "
        f"WHERE {where} AND ts >= {b(int(after))} ORDER BY ts LIMIT {b(chunk)}), "
        "gone AS (DELETE FROM data_points WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed)) "
        f"AND ts < {b(before)} RETURNING 1) "
        "SELECT (SELECT COUNT(*) FROM doomed), (SELECT MAX(ts) FROM doomed), "
        "(SELECT COUNT(*) FROM gone)"
    )
    return sql, b.params


def _old_batches_chunk(
    tenant_id: int, before: int, chunk: int, after: float
) -> tuple[str, list[Any]]:
    """As ``_old_points_chunk``, for the requests received before ``before``."""
    b = _sql.Binder(_dollar)
    sql = (
        "WITH doomed AS MATERIALIZED (SELECT ctid, received_at FROM batches "
        f"WHERE tenant_id = {b(tenant_id)} AND received_at < {b(float(before))} "
        f"AND received_at >= {b(float(after))} ORDER BY received_at LIMIT {b(chunk)}), "
        "gone AS (DELETE FROM batches WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed)) "
        "RETURNING 1) "
        "SELECT (SELECT COUNT(*) FROM doomed), (SELECT MAX(received_at) FROM doomed), "
        "(SELECT COUNT(*) FROM gone)"
    )
    return sql, b.params


async def _drain(
    conn: Connection, statement: Callable[[float], tuple[str, list[Any]]], chunk: int
) -> int:
    """Run chunk statements, each from where the last one ended, until one chooses
    fewer than ``chunk`` rows; the number deleted."""
    after: float = _FIRST
    total = 0
    while True:
        sql, params = statement(after)
        row = await conn.fetchrow(sql, *params)
        assert row is not None  # SELECT without FROM: one row
        chosen, last, deleted = int(row[0]), row[1], int(row[2])
        total += deleted
        if chosen < chunk:
            return total
        after = last


async def _apply_batch(
    conn: Connection, write: domain.BatchWrite, render: RenderAck
) -> tuple[domain.BatchCounts, bytes]:
    key = write.idempotency_key
    if key is not None and await conn.fetchrow(
        "SELECT 1 FROM idempotency_keys WHERE client_pk = $1 AND key = $2 AND created_at >= $3",
        write.client_pk,
        key,
        write.idempotency_since,
    ):
        raise _IdempotencyTaken
    batch = write.batch
    points = sorted(batch.points, key=lambda p: p.element_id)
    row = await conn.fetchrow(
        _UPSERT,
        write.tenant_id,
        write.environment.value,
        batch.type,
        batch.context,
        write.batch_id,
        write.received_at,
        [p.element_id for p in points],
        [p.kpi for p in points],
        [p.object_type for p in points],
        [p.value for p in points],
        [p.units for p in points],
        [p.user_id for p in points],
        [p.location_id for p in points],
        [p.timestamp for p in points],
        [p.date_from for p in points],
        [p.date_to for p in points],
    )
    assert row is not None  # an aggregate always returns one row
    created, changed = int(row[0]), int(row[1])
    counts = domain.BatchCounts(
        received=len(points),
        created=created,
        updated=changed - created,
        unchanged=len(points) - changed,
    )
    await conn.execute(_INSERT_BATCH, *_sql.batch_values(write, counts))
    body = render(counts)
    if key is not None:
        # A concurrent request with the same key that committed first makes this
        # insert do nothing: roll back everything and let the caller replay theirs.
        status = await conn.execute(
            "INSERT INTO idempotency_keys (client_pk, key, request_hash, status, body, created_at)"
            " VALUES ($1, $2, $3, 200, $4, $5) ON CONFLICT (client_pk, key) DO UPDATE SET "
            "request_hash = excluded.request_hash, body = excluded.body, "
            "created_at = excluded.created_at WHERE idempotency_keys.created_at < $6",
            write.client_pk,
            key,
            write.request_hash,
            body,
            int(write.received_at),
            write.idempotency_since,
        )
        if status.endswith(" 0"):
            raise _IdempotencyTaken
    return counts, body
