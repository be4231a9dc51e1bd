"""SQLite store: one writer process with group commit, reads on the server's threads.

Why this shape:

* SQLite allows one writer at a time. A single writer process owns the write
  connection (``_sqlite_writer``; why a process, not a thread, is said there);
  concurrent requests send their jobs and the writer commits everything waiting in
  one transaction (group commit), so one fsync serves many requests. Each job runs
  inside its own SAVEPOINT: a failing one is rolled back alone and the others still
  commit. A request's future resolves only after COMMIT returned, so no 2xx is ever
  sent for data that is not durable.
* Write jobs cross a socket, so each is a picklable callable: a module-level
  function of this module or a ``functools.partial`` of one, never a closure.
* WAL mode lets readers run beside the writer without blocking, so point reads
  (tenant, client, revocation) are done inline on the event loop: they take
  microseconds and a thread hop would cost more.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from kpihub import domain
from kpihub.errors import Conflict, NotFound, StoreUnavailable
from kpihub.storage import _dashboard_sql, _sql, _sqlite_staging, _sqlite_writer
from kpihub.storage._client_updates import ClientUpdates
from kpihub.storage._dashboard_sql import USER_COLUMNS
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage._sqlite_link import WriterLink
from kpihub.storage.base import NullObserver, RenderAck, StoreObserver
from kpihub.storage.urls import sqlite_path

T = TypeVar("T")
BACKEND = "sqlite"


def _qmark(_: int) -> str:
    return "?"


_INSERT_RECORD = _sql.insert_record_sql(_qmark)
_INSERT_CLIENT = _sql.insert_client_sql(_qmark)
_INSERT_USER = _dashboard_sql.insert_user_sql(_qmark)
# A series is never deleted: it is listed while it holds a point (one seek each).
_KPI_NAMES = (
    "SELECT context, kpi FROM series AS s WHERE tenant_id = ? AND environment = ? "
    "AND EXISTS (SELECT 1 FROM data_points WHERE series_id = s.id)"
)


class _Checkpointer(threading.Thread):
    """Copies the WAL back into the database beside the writer, not inside its commits,
    and lets the writer start the WAL over.

    With SQLite's automatic checkpoints, the commit that crosses the threshold pays for
    writing back and syncing the whole WAL, which shows up as latency spikes for every
    request in that group. A PASSIVE checkpoint on its own connection never blocks the
    writer or readers, so the writer's connection turns automatic checkpoints off.

    A passive checkpoint alone never catches up with a writer that commits all the
    time, and SQLite only starts the WAL over from its first byte once everything in it
    has been copied back. Under load the WAL then grows by every page committed (over
    a gigabyte in a minute), and every frame is appended to blocks the file system has
    to allocate and zero first: about a quarter of the writer's CPU went to that. So each round
    ends with a RESTART checkpoint, which takes the write lock between two group
    commits (waiting at most ``RESTART_WAIT_MS``, else it is a passive one and the next
    round tries again) to copy the little the passive one left; the writer's next
    commit then overwrites the start of the file, whose blocks exist already.
    """

    INTERVAL = 0.2  # seconds
    RESTART_WAIT_MS = 5
    """How long a RESTART checkpoint waits for the write lock, then for readers on the
    WAL: the longest it can hold the writer up, besides the copy itself."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(name="kpihub-sqlite-checkpointer", daemon=True)
        self._conn = conn
        self._stopping = threading.Event()

    def run(self) -> None:
        (store_timeout,) = self._conn.execute("PRAGMA busy_timeout").fetchone()
        self._conn.execute(f"PRAGMA busy_timeout = {self.RESTART_WAIT_MS}")
        while not self._stopping.wait(self.INTERVAL):
            # Busy or transient errors: the next round retries.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        # Another process may still read; its own close will checkpoint.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute(f"PRAGMA busy_timeout = {store_timeout}")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        self._conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


class SqliteStorage(ClientUpdates):
    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "full",
        busy_timeout: float = 10.0,
        mmap_size: int = 0,
        observer: StoreObserver | None = None,
    ) -> None:
        self.path = sqlite_path(url)
        self._synchronous = synchronous
        self._mmap_size = mmap_size
        self._busy_timeout = busy_timeout
        self._observer = observer or NullObserver()
        self._read: sqlite3.Connection | None = None
        self._writer: WriterLink | None = None
        self._checkpointer: _Checkpointer | None = None
        # Query connections, used one per thread at a time (see ``_query``).
        self._query_conns: list[sqlite3.Connection] = []

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._read = self._connect()
        self._writer = WriterLink(self.path, self._synchronous, self._busy_timeout, self._observer)
        await self._writer.start()
        self._checkpointer = _Checkpointer(self._connect())
        self._checkpointer.start()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        if self._read is not None:
            self._read.close()
            self._read = None
        while self._query_conns:
            self._query_conns.pop().close()

    def _connect(self) -> sqlite3.Connection:
        return _sqlite_writer.connect(self.path, self._synchronous, self._busy_timeout)

    def _connect_for_queries(self) -> sqlite3.Connection:
        """A connection for the query threads: the database file memory-mapped up to
        ``mmap_size`` bytes, so pages come from the OS cache without a copy (a series
        read ~15% faster). The inline reader does not map it: its reads are a few pages,
        and a mapped connection checks the file's size at each read transaction, which
        cost 8% of ingestion throughput at 100-element batches (each request reads).
        Nor do the writer process and the checkpointer."""
        conn = self._connect()
        conn.execute(f"PRAGMA mmap_size = {int(self._mmap_size)}")
        return conn

    async def ping(self) -> None:
        self._one("SELECT 1 FROM tenants LIMIT 1")

    def _unreadable(self, exc: sqlite3.Error) -> StoreUnavailable:
        self._observer.store_failed(BACKEND, exc)
        return StoreUnavailable(f"The SQLite database {self.path} cannot be read: {exc}")

    def _reader(self) -> sqlite3.Connection:
        if self._read is None:
            raise StoreUnavailable("The store is not started.")
        return self._read

    async def _submit(self, kind: bytes, payload: Any) -> Any:
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("The store is not started.")
        if not writer.alive:
            await writer.start()
        return await writer.submit(kind, payload)

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` (picklable: see the module's docstring) in the writer process."""
        result: T = await self._submit(_sqlite_writer.CALL, job)
        return result

    async def _insert_row(self, sql: str, params: Sequence[Any], conflict: str) -> int:
        return await self._write(partial(_insert, sql, params, conflict))

    async def _update_row(self, sql: str, params: Sequence[Any], missing: str) -> None:
        await self._write(partial(_update, sql, params, missing))

    async def _query(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read that may scan many rows on a worker thread, off the event loop.

        Point reads stay inline (``_reader``); a query scanning thousands of rows
        would stall every other request for its duration. Each job gets a connection
        of its own from a small pool, so concurrent queries do not share a cursor.
        """
        await self._settle()
        conn = self._query_conns.pop() if self._query_conns else self._connect_for_queries()
        try:
            return await asyncio.to_thread(job, conn)
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from exc
        finally:
            if self._read is None:
                conn.close()
            else:
                self._query_conns.append(conn)

    def _one(self, sql: str, *params: Any) -> Any:
        """One row of a point read, inline on the caller's thread (503 if it fails)."""
        try:
            return self._reader().execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from exc

    async def _settle(self) -> None:
        """Merge staged points (this process's or another's) before a read of points,
        so that it sees every acknowledged element."""
        if self._one(_sqlite_staging.HAS_STAGED_SQL) is not None:
            await self._submit(_sqlite_writer.MERGE, None)

    # -- tenants and integrations --------------------------------------------------

    async def create_tenant(self, name: str, timezone: str, now: int) -> domain.Tenant:
        tenant_id = await self._insert_row(
            "INSERT INTO tenants (name, timezone, created_at) VALUES (?, ?, ?)",
            (name, timezone, now),
            f"Tenant '{name}' already exists.",
        )
        return domain.Tenant(id=tenant_id, name=name, timezone=timezone, created_at=now)

    async def get_tenant(self, name: str) -> domain.Tenant | None:
        row = self._one(f"SELECT {_sql.TENANT_COLUMNS} FROM tenants WHERE name = ?", name)
        return domain.Tenant(*row) if row else None

    async def list_tenants(self) -> list[domain.Tenant]:
        rows = self._reader().execute(f"SELECT {_sql.TENANT_COLUMNS} FROM tenants ORDER BY name")
        return [domain.Tenant(*row) for row in rows]

    async def set_retention(self, tenant_id: int, days: int | None) -> domain.Tenant:
        await self._update_row(
            "UPDATE tenants SET retention_days = ? WHERE id = ?",
            (days, tenant_id),
            f"No tenant with id {tenant_id}.",
        )
        return domain.Tenant(
            *self._one(f"SELECT {_sql.TENANT_COLUMNS} FROM tenants WHERE id = ?", tenant_id)
        )

    async def create_integration(
        self, tenant_id: int, identifier: str, now: int
    ) -> domain.Integration:
        pk = await self._insert_row(
            "INSERT INTO integrations (tenant_id, identifier, created_at) VALUES (?, ?, ?)",
            (tenant_id, identifier, now),
            f"Integration identifier '{identifier}' already exists.",
        )
        return domain.Integration(id=pk, tenant_id=tenant_id, identifier=identifier, created_at=now)

    async def list_integrations(self, tenant_id: int) -> list[domain.Integration]:
        rows = self._reader().execute(
            "SELECT id, tenant_id, identifier, created_at FROM integrations "
            "WHERE tenant_id = ? ORDER BY identifier",
            (tenant_id,),
        )
        return [domain.Integration(*row) for row in rows]

    async def integration_exists(self, tenant_id: int, identifier: str) -> bool:
        row = self._one(
            "SELECT 1 FROM integrations WHERE tenant_id = ? AND identifier = ?",
            tenant_id,
            identifier,
        )
        return row is not None

    # -- clients -------------------------------------------------------------------

    async def create_client(self, new: domain.NewClient) -> domain.Client:
        await self._write(partial(_execute, _INSERT_CLIENT, _sql.client_values(new)))
        client = await self.get_client(new.client_id)
        assert client is not None
        return client

    async def get_client(self, client_id: str) -> domain.Client | None:
        row = self._one(f"SELECT {_sql.CLIENT_COLUMNS} FROM clients WHERE client_id = ?", client_id)
        return _sql.client_from_row(row) if row else None

    async def list_clients(self, tenant_id: int) -> list[domain.Client]:
        rows = self._reader().execute(
            f"SELECT {_sql.CLIENT_COLUMNS} FROM clients WHERE tenant_id = ? "
            "ORDER BY environment, created_at, id",
            (tenant_id,),
        )
        return [_sql.client_from_row(row) for row in rows]

    async def _update_client(self, client_id: str, sql: str, *params: Any) -> domain.Client:
        await self._update_row(
            f"UPDATE clients SET {sql} WHERE client_id = ?",
            (*params, client_id),
            f"No client with client_id '{client_id}'.",
        )
        client = await self.get_client(client_id)
        assert client is not None
        return client

    async def touch_client(self, client_pk: int, now: int) -> None:
        await self._write(
            partial(_execute, "UPDATE clients SET last_used_at = ? WHERE id = ?", (now, client_pk))
        )

    # -- keys and revocation -------------------------------------------------------

    async def signing_keys(self) -> list[domain.SigningKey]:
        rows = self._reader().execute(_sql.SELECT_SIGNING_KEYS)
        return [_sql.signing_key_from_row(r) for r in rows]

    async def add_signing_key(self, key: domain.SigningKey) -> None:
        await self._write(
            partial(
                _execute,
                "INSERT OR IGNORE INTO signing_keys "
                "(kid, private_pem, public_jwk, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
                _sql.signing_key_values(key),
            )
        )

    async def retire_signing_key(self, kid: str, now: int) -> domain.SigningKey:
        await self._update_row(
            "UPDATE signing_keys SET retired_at = COALESCE(retired_at, ?) WHERE kid = ?",
            (now, kid),
            f"No signing key with kid '{kid}'.",
        )
        return next(k for k in await self.signing_keys() if k.kid == kid)

    async def revoke_token(self, jti: str, client_pk: int, expires_at: int) -> None:
        now = int(time.time())
        statements = (
            (
                "INSERT OR IGNORE INTO revoked_tokens (jti, client_pk, expires_at) "
                "VALUES (?, ?, ?)",
                (jti, client_pk, expires_at),
            ),
            ("DELETE FROM revoked_tokens WHERE expires_at < ?", (now - 60,)),
        )
        await self._write(partial(_execute_all, statements))

    async def is_token_revoked(self, jti: str) -> bool:
        return self._one("SELECT 1 FROM revoked_tokens WHERE jti = ?", jti) is not None

    async def bearer_context(
        self, tenant_name: str, client_id: str, jti: str
    ) -> domain.BearerContext | None:
        sql, params = _sql.bearer_sql(_qmark, tenant_name, client_id, jti)
        row = self._one(sql, *params)
        return _sql.bearer_from_row(row) if row else None

    # -- ingestion -----------------------------------------------------------------

    async def ingest(
        self, write: domain.BatchWrite, render: RenderAck
    ) -> tuple[domain.BatchCounts, bytes] | None:
        # Plain tuples cross the socket several times faster than the points themselves.
        points = _sqlite_staging.point_rows(write.batch.points)
        bare = dataclasses.replace(write, batch=dataclasses.replace(write.batch, points=[]))
        result: tuple[domain.BatchCounts, bytes] | None = await self._submit(
            _sqlite_writer.STAGE, (bare, points, render)
        )
        return result

    async def idempotent_response(
        self, client_pk: int, key: str, since: int
    ) -> domain.StoredResponse | None:
        row = self._one(
            "SELECT request_hash, status, body FROM idempotency_keys "
            "WHERE client_pk = ? AND key = ? AND created_at >= ?",
            client_pk,
            key,
            since,
        )
        return domain.StoredResponse(row[0], row[1], bytes(row[2])) if row else None

    async def purge_expired(self, idempotency_before: int, now: int) -> int:
        statements = (
            ("DELETE FROM idempotency_keys WHERE created_at < ?", (idempotency_before,)),
            ("DELETE FROM revoked_tokens WHERE expires_at < ?", (now,)),
        )
        return await self._write(partial(_execute_all, statements))

    async def record_request(self, record: domain.RequestRecord) -> None:
        await self._write(partial(_execute, _INSERT_RECORD, _sql.record_values(record)))

    async def purge_before(
        self, tenant_id: int, before: int, *, dry_run: bool = False, chunk: int = _sql.PURGE_CHUNK
    ) -> domain.PurgeCounts:
        groups = await self._query(lambda conn: _point_groups(conn, tenant_id))
        if dry_run:
            return await self._query(lambda conn: _count_old(conn, tenant_id, groups, before))
        points = 0
        for group in groups:
            job = partial(
                _delete_old_points, chunk=chunk, tenant_id=tenant_id, group=group, before=before
            )
            points += await self._drain(job, chunk)
        sql, params = _sql.delete_old_batches_sql(_qmark, tenant_id, before, chunk)
        batches = await self._drain(partial(_execute, sql, params), chunk)
        return domain.PurgeCounts(points=points, batches=batches)

    async def _drain(self, job: Callable[[sqlite3.Connection], int], chunk: int) -> int:
        """Run ``job`` (which deletes up to ``chunk`` rows) in write transactions of its
        own until it deletes fewer; each waits its turn with the ingestion batches."""
        total = 0
        while True:
            deleted = await self._write(job)
            total += deleted
            if deleted < chunk:
                return total

    async def count_points(self, tenant_id: int, environment: domain.Environment) -> int:
        await self._settle()
        b = _sql.Binder(_qmark)
        where = _sql.tenant_points_where(b, tenant_id, environment, series=True)
        row = self._one(f"SELECT COUNT(*) FROM data_points WHERE {where}", *b.params)
        return int(row[0])

    # -- reads ---------------------------------------------------------------------

    async def _select(
        self,
        flt: domain.PointFilter,
        build: Callable[..., tuple[str, list[Any]]],
        from_row: Callable[[Any], T],
    ) -> list[T]:
        """``build(mark, flt, contexts, series=True)``'s rows through ``from_row``: the
        series ids lead to the time index whatever the filter names, no contexts needed."""
        sql, params = build(_qmark, flt, None, series=True)

        def job(conn: sqlite3.Connection) -> list[T]:
            return [from_row(r) for r in conn.execute(sql, params)]

        return await self._query(job)

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
            _sql.slots_sql, slot=slot, group_by=group_by, with_last=with_last, collate=""
        )
        return await self._select(flt, build, _sql.slot_from_row)

    async def leaderboard(
        self, flt: domain.PointFilter, *, by: str, agg: str, limit: int
    ) -> list[domain.RankedEntry]:
        build = partial(_sql.leaderboard_sql, by=by, agg=agg, limit=limit, collate="")
        return await self._select(flt, build, lambda r: _sql.ranked_from_row(r, agg))

    async def catalog(
        self, tenant_id: int, environment: domain.Environment
    ) -> list[domain.CatalogEntry]:
        def job(conn: sqlite3.Connection) -> list[domain.CatalogEntry]:
            sql, params = _sql.catalog_sql(_qmark, tenant_id, environment, series=True)
            usql, uparams = _sql.catalog_units_sql(_qmark, tenant_id, environment, series=True)
            # One read transaction: both statements see the same snapshot.
            conn.execute("BEGIN")
            try:
                rows = conn.execute(sql, params).fetchall()
                units = conn.execute(usql, uparams).fetchall()
            finally:
                conn.execute("COMMIT")
            return _sql.catalog_entries(rows, units)

        return await self._query(job)

    async def kpi_names(
        self, tenant_id: int, environment: domain.Environment
    ) -> list[tuple[str, str]]:
        def job(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(_KPI_NAMES, (tenant_id, environment.value))
            return sorted((str(context), str(kpi)) for context, kpi in rows)

        return await self._query(job)

    # -- the dashboard -------------------------------------------------------------

    async def create_user(self, new: domain.NewDashboardUser) -> domain.DashboardUser:
        await self._insert_row(
            _INSERT_USER,
            _dashboard_sql.user_values(new),
            f"A user with the email '{new.email}' already exists.",
        )
        user = await self.get_user(new.tenant_id, new.email)
        assert user is not None
        return user

    async def get_user(self, tenant_id: int, email: str) -> domain.DashboardUser | None:
        row = self._one(
            f"SELECT {USER_COLUMNS} FROM dashboard_users WHERE tenant_id = ? AND email = ?",
            tenant_id,
            email,
        )
        return _dashboard_sql.user_from_row(row) if row else None

    async def get_user_by_id(self, user_pk: int) -> domain.DashboardUser | None:
        row = self._one(f"SELECT {USER_COLUMNS} FROM dashboard_users WHERE id = ?", user_pk)
        return _dashboard_sql.user_from_row(row) if row else None

    async def list_users(self, tenant_id: int) -> list[domain.DashboardUser]:
        rows = self._reader().execute(
            f"SELECT {USER_COLUMNS} FROM dashboard_users WHERE tenant_id = ? ORDER BY email",
            (tenant_id,),
        )
        return [_dashboard_sql.user_from_row(r) for r in rows]

    async def record_login(self, user_pk: int, now: int) -> None:
        await self._write(
            partial(
                _execute,
                "UPDATE dashboard_users SET last_login_at = ? WHERE id = ?",
                (now, user_pk),
            )
        )

    async def end_sessions(self, user_pk: int, now: int) -> None:
        await self._write(
            partial(
                _execute,
                "UPDATE dashboard_users SET sessions_valid_after = ? WHERE id = ?",
                (now + 1, user_pk),
            )
        )

    async def list_requests(self, flt: domain.RequestFilter) -> list[domain.RequestSummary]:
        sql, params = _dashboard_sql.requests_sql(_qmark, flt)
        return await self._query(
            lambda conn: [_dashboard_sql.summary_from_row(r) for r in conn.execute(sql, params)]
        )

    async def get_request(self, tenant_id: int, batch_id: str) -> domain.RequestDetail | None:
        sql, params = _dashboard_sql.request_sql(_qmark, tenant_id, batch_id)
        row = self._one(sql, *params)
        return _dashboard_sql.detail_from_row(row) if row else None

    async def hourly_traffic(
        self, tenant_id: int, environment: domain.Environment, since: int
    ) -> list[domain.HourlyTraffic]:
        sql, params = _dashboard_sql.traffic_sql(
            _qmark, tenant_id, environment, since, "CAST(received_at AS INTEGER) / 3600 * 3600"
        )
        return await self._query(
            lambda conn: [_dashboard_sql.traffic_from_row(r) for r in conn.execute(sql, params)]
        )

    async def last_accepted(
        self, tenant_id: int, environment: domain.Environment
    ) -> dict[int, float]:
        sql, params = _dashboard_sql.last_accepted_sql(_qmark, tenant_id, environment)
        return await self._query(
            lambda conn: {int(r[0]): float(r[1]) for r in conn.execute(sql, params)}
        )


def _point_groups(conn: sqlite3.Connection, tenant_id: int) -> list[_sql.PointGroup]:
    """The tenant's series (one may hold no point any more: it is never deleted)."""
    rows = conn.execute(
        "SELECT environment, context, kpi FROM series WHERE tenant_id = ? "
        "ORDER BY environment, context, kpi",
        (tenant_id,),
    )
    return [(domain.Environment(env), context, kpi) for env, context, kpi in rows]


def _count_old(
    conn: sqlite3.Connection, tenant_id: int, groups: list[_sql.PointGroup], before: int
) -> domain.PurgeCounts:
    conn.execute("BEGIN")  # one snapshot for every count
    try:
        points = sum(
            conn.execute(
                *_sql.count_old_points_sql(_qmark, tenant_id, g, before, series=True)
            ).fetchone()[0]
            for g in groups
        )
        (batches,) = conn.execute(*_sql.count_old_batches_sql(_qmark, tenant_id, before)).fetchone()
    finally:
        conn.execute("COMMIT")
    return domain.PurgeCounts(points=int(points), batches=int(batches))


def _delete_old_points(
    conn: sqlite3.Connection, chunk: int, *, tenant_id: int, group: _sql.PointGroup, before: int
) -> int:
    sql, params = _sql.delete_old_points_sql(_qmark, tenant_id, group, before, chunk)
    return int(conn.execute(sql, params).rowcount)


# -- write jobs: module-level, so that they can be pickled to the writer process ----------


def _execute(sql: str, params: Sequence[Any], conn: sqlite3.Connection) -> int:
    """One statement; the rows it changed."""
    return int(conn.execute(sql, params).rowcount)


def _execute_all(statements: Sequence[tuple[str, Sequence[Any]]], conn: sqlite3.Connection) -> int:
    """Statements in order; the rows they changed, in all."""
    return sum(_execute(sql, params, conn) for sql, params in statements)


def _insert(sql: str, params: Sequence[Any], conflict: str, conn: sqlite3.Connection) -> int:
    """An INSERT; the new row's id, or ``Conflict(conflict)`` when it already exists."""
    try:
        cur = conn.execute(sql, params)
    except sqlite3.IntegrityError as exc:
        raise Conflict(conflict) from exc
    assert cur.lastrowid is not None
    return cur.lastrowid


def _update(sql: str, params: Sequence[Any], missing: str, conn: sqlite3.Connection) -> None:
    """An UPDATE of one row; ``NotFound(missing)`` when there is none."""
    if conn.execute(sql, params).rowcount == 0:
        raise NotFound(missing)
