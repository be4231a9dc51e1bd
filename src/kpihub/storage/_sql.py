"""SQL pieces both backends share: column lists, row mapping, row values.

Placeholders differ (``?`` for SQLite, ``$n`` for PostgreSQL), so statements are
built with a ``mark`` function that renders the n-th placeholder (1-based).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from kpihub.domain import (
    BatchCounts,
    BatchWrite,
    BearerContext,
    CatalogEntry,
    Client,
    Environment,
    NewClient,
    PointFilter,
    PointKey,
    RankedEntry,
    RequestRecord,
    SigningKey,
    SlotAggregate,
    StoredPoint,
    Tenant,
)

Mark = Callable[[int], str]

TENANT_COLUMNS = "id, name, timezone, created_at, retention_days"
CLIENT_COLUMNS = (
    "id, tenant_id, environment, name, client_id, secret_hash, old_secret_hash, scopes, "
    "rate_limit, token_ttl, revoked_at, tokens_valid_after, created_at, last_used_at"
)
POINT_COLUMNS = (
    "tenant_id, environment, type, context, element_id, kpi, object_type, value, units, "
    "user_id, location_id, ts, date_from, date_to, batch_id, updated_at"
)
# Columns whose change makes a resent element an update rather than "unchanged".
COMPARED = (
    "kpi",
    "object_type",
    "value",
    "units",
    "user_id",
    "location_id",
    "ts",
    "date_from",
    "date_to",
)
UPSERT_CONFLICT = (
    " ON CONFLICT (tenant_id, environment, type, context, element_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*COMPARED, "batch_id", "updated_at"))
    + ", revision = data_points.revision + 1 WHERE "
)

_BATCH_COLUMNS = (
    "id, tenant_id, environment, client_pk, endpoint, type, context, version, http_status, "
    "received, created, updated, unchanged, received_at, duration_ms, raw_body, "
    "body_truncated, errors, message, idempotency_key"
)
_RECORD_COLUMNS = (
    "id, tenant_id, environment, client_pk, endpoint, http_status, received_at, "
    "duration_ms, raw_body, body_truncated, errors, message"
)


def insert_client_sql(mark: Mark) -> str:
    return (
        "INSERT INTO clients (tenant_id, environment, name, client_id, secret_hash, scopes, "
        f"rate_limit, token_ttl, tokens_valid_after, created_at) VALUES {values_sql(mark, 10)}"
    )


def client_values(new: NewClient) -> tuple[Any, ...]:
    """The ``clients`` row of a new client, in ``insert_client_sql`` order."""
    return (
        new.tenant_id,
        new.environment.value,
        new.name,
        new.client_id,
        new.secret_hash,
        " ".join(new.scopes),
        new.rate_limit,
        new.token_ttl,
        0,
        new.created_at,
    )


def values_sql(mark: Mark, count: int) -> str:
    return "(" + ", ".join(mark(i) for i in range(1, count + 1)) + ")"


def insert_batch_sql(mark: Mark) -> str:
    return f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES {values_sql(mark, 20)}"


def insert_record_sql(mark: Mark) -> str:
    return f"INSERT INTO batches ({_RECORD_COLUMNS}) VALUES {values_sql(mark, 12)}"


def batch_values(write: BatchWrite, counts: BatchCounts) -> tuple[Any, ...]:
    """The ``batches`` row of an accepted batch, in ``insert_batch_sql`` order."""
    batch = write.batch
    return (
        write.batch_id,
        write.tenant_id,
        write.environment.value,
        write.client_pk,
        "kpi",
        batch.type,
        batch.context,
        batch.version,
        200,
        counts.received,
        counts.created,
        counts.updated,
        counts.unchanged,
        write.received_at,
        (time.time() - write.received_at) * 1000,
        write.raw_body,
        False,
        None,
        None,
        write.idempotency_key,
    )


def record_values(r: RequestRecord) -> tuple[Any, ...]:
    """The ``batches`` row of a rejected request, in ``insert_record_sql`` order."""
    return (
        r.batch_id,
        r.tenant_id,
        r.environment.value if r.environment else None,
        r.client_pk,
        r.endpoint,
        r.http_status,
        r.received_at,
        r.duration_ms,
        r.raw_body,
        r.body_truncated,
        json.dumps(r.errors) if r.errors else None,
        r.message,
    )


def bearer_sql(mark: Mark, tenant_name: str, client_id: str, jti: str) -> tuple[str, list[Any]]:
    """Tenant, its client and the token's revocation in one statement (one round trip).

    Selects ``TENANT_COLUMNS``, then ``CLIENT_COLUMNS`` (all NULL when the tenant has no
    such client), then whether the token id is revoked; no row when there is no tenant.
    The text is built once per placeholder style: every API request runs it.
    """
    return _bearer_statement(mark), [jti, client_id, tenant_name]


@functools.cache
def _bearer_statement(mark: Mark) -> str:
    tenant_columns = ", ".join(f"t.{name.strip()}" for name in TENANT_COLUMNS.split(","))
    client_columns = ", ".join(f"c.{name.strip()}" for name in CLIENT_COLUMNS.split(","))
    return (
        f"SELECT {tenant_columns}, {client_columns}, "
        f"EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = {mark(1)}) "
        "FROM tenants t LEFT JOIN clients c "
        f"ON c.client_id = {mark(2)} AND c.tenant_id = t.id "
        f"WHERE t.name = {mark(3)}"
    )


_TENANT_WIDTH = TENANT_COLUMNS.count(",") + 1
_CLIENT_WIDTH = CLIENT_COLUMNS.count(",") + 1


def bearer_from_row(row: Any) -> BearerContext:
    """A ``BearerContext`` from a ``bearer_sql`` row.

    The same row gives the same (immutable) context: building its two dataclasses cost
    about 40 µs, on every API request, for rows that change only when an operator
    changes the tenant or the client.
    """
    return _bearer_context(tuple(row))


@functools.lru_cache(maxsize=256)
def _bearer_context(row: tuple[Any, ...]) -> BearerContext:
    client_row = row[_TENANT_WIDTH : _TENANT_WIDTH + _CLIENT_WIDTH]
    client = client_from_row(client_row) if client_row[0] is not None else None
    return BearerContext(
        tenant=Tenant(*row[:_TENANT_WIDTH]), client=client, token_revoked=bool(row[-1])
    )


def client_from_row(row: Any) -> Client:
    """A ``Client`` from a row selected with ``CLIENT_COLUMNS``."""
    return Client(
        id=row[0],
        tenant_id=row[1],
        environment=Environment(row[2]),
        name=row[3],
        client_id=row[4],
        secret_hash=bytes(row[5]),
        old_secret_hash=bytes(row[6]) if row[6] is not None else None,
        scopes=tuple(row[7].split()),
        rate_limit=row[8],
        token_ttl=row[9],
        revoked_at=row[10],
        tokens_valid_after=row[11],
        created_at=row[12],
        last_used_at=row[13],
    )


# -- reads (the query API) ---------------------------------------------------------------


class Binder:
    """Collects bound values while a statement is built; ``b(value)`` is its placeholder."""

    def __init__(self, mark: Mark) -> None:
        self.mark = mark
        self.params: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.params.append(value)
        return self.mark(len(self.params))

    def many(self, values: Sequence[Any]) -> str:
        return ", ".join(self(v) for v in values)


POINT_READ_COLUMNS = (
    "type, context, element_id, kpi, object_type, value, units, user_id, location_id, "
    "ts, date_from, date_to"
)


def point_from_row(row: Any) -> StoredPoint:
    """A ``StoredPoint`` from a row selected with ``POINT_READ_COLUMNS``."""
    return StoredPoint(
        type=row[0],
        context=row[1],
        element_id=row[2],
        kpi=row[3],
        object_type=row[4],
        value=float(row[5]),
        units=row[6],
        user_id=row[7],
        location_id=row[8],
        timestamp=int(row[9]),
        date_from=row[10],
        date_to=row[11],
    )


def needs_contexts(flt: PointFilter) -> bool:
    """Whether a filter should name the contexts explicitly to reach an index.

    The time index leads with (context, kpi): a filter on KPIs without a context
    would scan the tenant's every point, so the store first lists the contexts
    (``contexts_sql``, a few index seeks) and filters on ``context IN (...)``.
    """
    return flt.context is None and bool(flt.kpis)


def contexts_sql(mark: Mark, tenant_id: int, environment: Environment) -> tuple[str, list[Any]]:
    """Every context of a tenant's environment, by a loose index scan (one seek each)."""
    b = Binder(mark)
    first = f"tenant_id = {b(tenant_id)} AND environment = {b(environment.value)}"
    then = f"tenant_id = {b(tenant_id)} AND environment = {b(environment.value)}"
    sql = (
        "WITH RECURSIVE c(context) AS ("
        f"SELECT MIN(context) FROM data_points WHERE {first} "
        "UNION ALL "
        f"SELECT (SELECT MIN(context) FROM data_points WHERE {then} AND context > c.context) "
        "FROM c WHERE c.context IS NOT NULL"
        ") SELECT context FROM c WHERE context IS NOT NULL"
    )
    return sql, b.params


def _series_in(b: Binder, scope: list[str], *, one: bool = False) -> str:
    """SQLite's time index leads with the series id (migration 0008): the ids of the
    series that ``scope`` (conditions on tenant, environment, context, KPI) names.

    ``one``: the scope names a single series (a context and one KPI). Then the id is
    compared with ``=``, so that SQLite reads the index in timestamp order (a page of
    points streams from it instead of the whole range being sorted first).
    """
    names = f"SELECT id FROM series WHERE {' AND '.join(scope)}"
    return f"series_id = ({names})" if one else f"series_id IN ({names})"


def where_points(
    b: Binder, flt: PointFilter, contexts: Sequence[str] | None, *, series: bool = False
) -> str:
    """The WHERE clause (without the keyword) selecting ``flt``'s points; with
    ``series``, led by the ids of the series it names."""
    scope = [f"tenant_id = {b(flt.tenant_id)}", f"environment = {b(flt.environment.value)}"]
    if flt.context is not None:
        scope.append(f"context = {b(flt.context)}")
    elif contexts is not None:
        scope.append(f"context IN ({b.many(contexts)})" if contexts else "1 = 0")
    if len(flt.kpis) == 1:
        scope.append(f"kpi = {b(flt.kpis[0])}")
    elif flt.kpis:
        scope.append(f"kpi IN ({b.many(flt.kpis)})")
    one = flt.context is not None and len(flt.kpis) == 1
    parts = [_series_in(b, scope, one=one)] if series else scope
    if flt.type is not None:
        parts.append(f"type = {b(flt.type)}")
    if flt.user_id is not None:
        parts.append(f"user_id = {b(flt.user_id)}")
    if flt.location_id is not None:
        parts.append(f"location_id = {b(flt.location_id)}")
    if flt.overlap:
        # [date_from, date_to] overlaps [start, end); a point without them is its instant.
        if flt.start is not None:
            parts.append(f"COALESCE(date_to, ts) >= {b(flt.start)}")
        if flt.end is not None:
            parts.append(f"COALESCE(date_from, ts) < {b(flt.end)}")
    else:
        if flt.start is not None:
            parts.append(f"ts >= {b(flt.start)}")
        if flt.end is not None:
            parts.append(f"ts < {b(flt.end)}")
    return " AND ".join(parts)


def points_sql(
    mark: Mark,
    flt: PointFilter,
    contexts: Sequence[str] | None,
    *,
    after: PointKey | None,
    descending: bool,
    limit: int,
    series: bool = False,
) -> tuple[str, list[Any]]:
    """One page of points in (timestamp, type, context, element id) order (keyset)."""
    b = Binder(mark)
    where = where_points(b, flt, contexts, series=series)
    if after is not None:
        op = "<" if descending else ">"
        where += (
            f" AND (ts, type, context, element_id) {op} "
            f"({b(after.timestamp)}, {b(after.type)}, {b(after.context)}, {b(after.element_id)})"
        )
    d = " DESC" if descending else ""
    sql = (
        f"SELECT {POINT_READ_COLUMNS} FROM data_points WHERE {where} "
        f"ORDER BY ts{d}, type{d}, context{d}, element_id{d} LIMIT {b(limit)}"
    )
    return sql, b.params


_TIE_BREAKS = ("element_id", "type", "context")


def _last_order(collate: str) -> str:
    """The "last" rule: greatest timestamp, then greatest element id (then type, context)."""
    return "ts DESC, " + ", ".join(f"{c}{collate} DESC" for c in _TIE_BREAKS)


def _ranked(part: dict[str, str], where: str, collate: str, *, counted: bool) -> str:
    """The points of ``where`` as rows of ``part``'s aliases, ``value``, ``rn`` (1 for the
    "last" point of its partition) and, when ``counted``, ``n`` (its partition's points)."""
    columns = ", ".join(f"{expr} AS {alias}" for alias, expr in part.items())
    by = ", ".join(part.values())
    n = f", COUNT(*) OVER (PARTITION BY {by}) AS n" if counted else ""
    return (
        f"SELECT {columns}, value, ROW_NUMBER() OVER (PARTITION BY {by} "
        f"ORDER BY {_last_order(collate)}) AS rn{n} FROM data_points WHERE {where}"
    )


def _last_value(
    b: Binder, flt: PointFilter, contexts: Sequence[str] | None, same: str, collate: str
) -> str:
    """The value of the "last" point among those of ``flt`` at ``a.mt`` (a group's greatest
    timestamp) for which ``same`` holds (they are of ``a``'s group): one seek.

    For SQLite (migration 0009), whose time index holds neither the element id nor the
    context: a group's aggregates and greatest timestamp come from the index alone,
    and only the points at that timestamp are read from their rows to break ties.
    """
    where = where_points(b, flt, contexts, series=True)
    ties = ", ".join(f"{c}{collate} DESC" for c in _TIE_BREAKS)
    return (
        f"(SELECT value FROM data_points WHERE {where} AND ts = a.mt AND {same} "
        f"ORDER BY {ties} LIMIT 1)"
    )


def slots_sql(
    mark: Mark,
    flt: PointFilter,
    contexts: Sequence[str] | None,
    *,
    slot: int,
    group_by: str | None,
    with_last: bool,
    collate: str,
    series: bool = False,
) -> tuple[str, list[Any]]:
    """Sum, count, min, max (and last) per (group, slot of ``slot`` seconds).

    Rows: group, slot start, sum, count, min, max, last (NULL unless ``with_last``).
    """
    if group_by not in (None, "user_id", "location_id", "kpi"):
        raise ValueError(group_by)
    b = Binder(mark)
    where = where_points(b, flt, contexts, series=series)
    group, source = group_by or "NULL", "data_points"
    same = "true" if group_by is None else f"{group_by} IS a.g"  # the last point's group
    if series and group_by == "kpi":
        # SQLite's time index holds no KPI (migration 0009): its series names it.
        group, source = "k.kpi", "data_points JOIN series AS k ON k.id = data_points.series_id"
        same = "(SELECT kpi FROM series WHERE id = series_id) = a.g"
    slot_expr = f"ts - ts % {int(slot)}"
    if not with_last:
        sql = (
            f"SELECT {group} AS g, {slot_expr} AS s, SUM(value), COUNT(*), MIN(value), "
            f"MAX(value), NULL FROM {source} WHERE {where} GROUP BY 1, 2"
        )
        return sql, b.params
    if series:
        aggregates = (
            f"SELECT {group} AS g, {slot_expr} AS s, SUM(value) AS total, COUNT(*) AS n, "
            "MIN(value) AS low, MAX(value) AS high, MAX(ts) AS mt "
            f"FROM {source} WHERE {where} GROUP BY 1, 2"
        )
        last = _last_value(b, flt, contexts, same, collate)
        sql = f"WITH a AS ({aggregates}) SELECT g, s, total, n, low, high, {last} FROM a"
        return sql, b.params
    ranked = _ranked({"g": group, "s": slot_expr}, where, collate, counted=False)
    sql = (
        "SELECT g, s, SUM(value), COUNT(*), MIN(value), MAX(value), "
        f"MAX(CASE WHEN rn = 1 THEN value END) FROM ({ranked}) x GROUP BY g, s"
    )
    return sql, b.params


_AGG_SQL = {
    "sum": "SUM(value)",
    "avg": "AVG(value)",
    "min": "MIN(value)",
    "max": "MAX(value)",
    "count": "COUNT(*)",
}


def leaderboard_sql(
    mark: Mark,
    flt: PointFilter,
    contexts: Sequence[str] | None,
    *,
    by: str,
    agg: str,
    limit: int,
    collate: str,
    series: bool = False,
) -> tuple[str, list[Any]]:
    """The top ``limit`` ids by ``agg``: rows of id, value, count, competition rank."""
    if by not in ("user_id", "location_id") or (agg != "last" and agg not in _AGG_SQL):
        raise ValueError((by, agg))
    b = Binder(mark)
    where = where_points(b, flt, contexts, series=series) + f" AND {by} IS NOT NULL"
    latest = ""
    if agg == "last" and series:
        latest = (
            f"WITH a AS (SELECT {by} AS id, COUNT(*) AS n, MAX(ts) AS mt "
            f"FROM data_points WHERE {where} GROUP BY {by}) "
        )
        last = _last_value(b, flt, contexts, f"{by} = a.id", collate)
        per_id = f"SELECT id, {last} AS v, n FROM a"
    elif agg == "last":
        ranked = _ranked({"id": by}, where, collate, counted=True)
        per_id = f"SELECT id, value AS v, n FROM ({ranked}) r WHERE rn = 1"
    else:
        per_id = (
            f"SELECT {by} AS id, {_AGG_SQL[agg]} AS v, COUNT(*) AS n "
            f"FROM data_points WHERE {where} GROUP BY {by}"
        )
    sql = (
        f"{latest}SELECT id, v, n, RANK() OVER (ORDER BY v DESC) AS r FROM ({per_id}) g "
        f"ORDER BY v DESC, id{collate} LIMIT {b(limit)}"
    )
    return sql, b.params


def tenant_points_where(
    b: Binder, tenant_id: int, environment: Environment, *, series: bool = False
) -> str:
    """Every point of a tenant's environment (with ``series``: by its series ids)."""
    scope = [f"tenant_id = {b(tenant_id)}", f"environment = {b(environment.value)}"]
    return _series_in(b, scope) if series else " AND ".join(scope)


def catalog_sql(
    mark: Mark, tenant_id: int, environment: Environment, *, series: bool = False
) -> tuple[str, list[Any]]:
    """Per (type, context, kpi): points, first and last timestamp, users, locations.

    With ``series``, counted per series and type from the time index alone, then named
    by ``series`` (a series is one tenant, environment, context and KPI)."""
    b = Binder(mark)
    if series:
        per_series = (
            "SELECT series_id, type, COUNT(*) AS n, MIN(ts) AS first, MAX(ts) AS last, "
            "COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT location_id) AS locations "
            f"FROM data_points WHERE {tenant_points_where(b, tenant_id, environment, series=True)} "
            "GROUP BY series_id, type"
        )
        sql = (
            "SELECT x.type, s.context, s.kpi, x.n, x.first, x.last, x.users, x.locations "
            f"FROM ({per_series}) AS x JOIN series AS s ON s.id = x.series_id"
        )
        return sql, b.params
    sql = (
        "SELECT type, context, kpi, COUNT(*), MIN(ts), MAX(ts), COUNT(DISTINCT user_id), "
        "COUNT(DISTINCT location_id) FROM data_points "
        f"WHERE {tenant_points_where(b, tenant_id, environment, series=series)} "
        "GROUP BY type, context, kpi"
    )
    return sql, b.params


def catalog_units_sql(
    mark: Mark, tenant_id: int, environment: Environment, *, series: bool = False
) -> tuple[str, list[Any]]:
    b = Binder(mark)
    sql = (
        "SELECT DISTINCT type, context, kpi, units FROM data_points "
        f"WHERE {tenant_points_where(b, tenant_id, environment, series=series)} "
        "AND units IS NOT NULL"
    )
    return sql, b.params


# A row of ``slots_sql`` is already a SlotAggregate's fields with their types on both
# stores: text groups, integer slots and counts, and double values (SQLite's REAL
# column reads back as float, PostgreSQL's double precision as float).
slot_from_row: Callable[[Any], SlotAggregate] = SlotAggregate._make


def ranked_from_row(row: Any, agg: str) -> RankedEntry:
    value = int(row[1]) if agg == "count" else float(row[1])
    return RankedEntry(rank=int(row[3]), id=str(row[0]), value=value, count=int(row[2]))


def catalog_entries(rows: Sequence[Any], unit_rows: Sequence[Any]) -> list[CatalogEntry]:
    units: dict[tuple[str, str, str], list[str]] = {}
    for type_, context, kpi, unit in unit_rows:
        units.setdefault((type_, context, kpi), []).append(unit)
    entries = [
        CatalogEntry(
            type=r[0],
            context=r[1],
            kpi=r[2],
            units=tuple(sorted(units.get((r[0], r[1], r[2]), ()))),
            points=int(r[3]),
            first_timestamp=int(r[4]),
            last_timestamp=int(r[5]),
            users=int(r[6]),
            locations=int(r[7]),
        )
        for r in rows
    ]
    entries.sort(key=lambda e: (e.type, e.context, e.kpi))
    return entries


SELECT_SIGNING_KEYS = (
    "SELECT kid, private_pem, public_jwk, created_at, retired_at FROM signing_keys "
    "ORDER BY created_at, kid"
)


def signing_key_from_row(row: Any) -> SigningKey:
    return SigningKey(
        kid=row[0],
        private_pem=bytes(row[1]),
        public_jwk=json.loads(row[2]),
        created_at=row[3],
        retired_at=row[4],
    )


def signing_key_values(key: SigningKey) -> tuple[Any, ...]:
    """A ``signing_keys`` row: kid, private_pem, public_jwk, created_at, retired_at."""
    return (key.kid, key.private_pem, json.dumps(key.public_jwk), key.created_at, key.retired_at)


# -- retention ---------------------------------------------------------------------------

PointGroup = tuple[Environment, str, str]
"""(environment, context, KPI): the points one range of the time index holds."""

PURGE_CHUNK = 1000
"""Rows deleted per transaction by a retention purge: short enough that SQLite's write
lock is held for milliseconds between ingestion batches, and that PostgreSQL never
carries one huge transaction (autovacuum can reclaim behind the purge)."""


def kpis_sql(
    mark: Mark, tenant_id: int, environment: Environment, context: str
) -> tuple[str, list[Any]]:
    """Every KPI of one context, by a loose scan of the time index (one seek each)."""
    b = Binder(mark)
    first = (
        f"tenant_id = {b(tenant_id)} AND environment = {b(environment.value)} "
        f"AND context = {b(context)}"
    )
    then = (
        f"tenant_id = {b(tenant_id)} AND environment = {b(environment.value)} "
        f"AND context = {b(context)}"
    )
    sql = (
        "WITH RECURSIVE k(kpi) AS ("
        f"SELECT MIN(kpi) FROM data_points WHERE {first} "
        "UNION ALL "
        f"SELECT (SELECT MIN(kpi) FROM data_points WHERE {then} AND kpi > k.kpi) "
        "FROM k WHERE k.kpi IS NOT NULL"
        ") SELECT kpi FROM k WHERE kpi IS NOT NULL"
    )
    return sql, b.params


def old_points_where(
    b: Binder, tenant_id: int, group: PointGroup, before: int, *, series: bool = False
) -> str:
    """One (environment, context, KPI) group's points older than ``before``.

    In the time index these are one contiguous range (its columns end with ``ts``),
    so a chunk is an index seek plus the rows it deletes, however big the table.
    """
    environment, context, kpi = group
    scope = [
        f"tenant_id = {b(tenant_id)}",
        f"environment = {b(environment.value)}",
        f"context = {b(context)}",
        f"kpi = {b(kpi)}",
    ]
    where = _series_in(b, scope, one=True) if series else " AND ".join(scope)
    return f"{where} AND ts < {b(before)}"


def count_old_points_sql(
    mark: Mark, tenant_id: int, group: PointGroup, before: int, *, series: bool = False
) -> tuple[str, list[Any]]:
    b = Binder(mark)
    where = old_points_where(b, tenant_id, group, before, series=series)
    return f"SELECT COUNT(*) FROM data_points WHERE {where}", b.params


def delete_old_points_sql(
    mark: Mark, tenant_id: int, group: PointGroup, before: int, limit: int
) -> tuple[str, list[Any]]:
    """SQLite: delete up to ``limit`` old points of one group, found on the time index
    (which carries each row's rowid since migration 0009), by rowid."""
    b = Binder(mark)
    where = old_points_where(b, tenant_id, group, before, series=True)
    rowids = f"SELECT rowid FROM data_points WHERE {where} LIMIT {b(limit)}"
    return f"DELETE FROM data_points WHERE rowid IN ({rowids})", b.params


def count_old_batches_sql(mark: Mark, tenant_id: int, before: int) -> tuple[str, list[Any]]:
    b = Binder(mark)
    sql = (
        f"SELECT COUNT(*) FROM batches WHERE tenant_id = {b(tenant_id)} "
        f"AND received_at < {b(before)}"
    )
    return sql, b.params


def delete_old_batches_sql(
    mark: Mark, tenant_id: int, before: int, limit: int
) -> tuple[str, list[Any]]:
    """Up to ``limit`` of the tenant's requests received before ``before`` (a range of
    ``ix_batches_tenant_time``)."""
    b = Binder(mark)
    sql = (
        "DELETE FROM batches WHERE id IN (SELECT id FROM batches "
        f"WHERE tenant_id = {b(tenant_id)} AND received_at < {b(before)} LIMIT {b(limit)})"
    )
    return sql, b.params
