"""SQL of the dashboard's reads and of its users, shared by both backends.

Statements take a ``mark`` function rendering the n-th placeholder, as in ``_sql``.
"""

from __future__ import annotations

import json
from typing import Any

from kpihub.domain import (
    DashboardUser,
    Environment,
    HourlyTraffic,
    NewDashboardUser,
    RequestDetail,
    RequestFilter,
    RequestSummary,
    Role,
)
from kpihub.storage._sql import Binder, Mark, values_sql

USER_COLUMNS = (
    "id, tenant_id, email, password_hash, role, created_at, last_login_at, sessions_valid_after"
)
SUMMARY_COLUMNS = (
    "id, environment, client_pk, endpoint, type, context, http_status, received, created, "
    "updated, unchanged, received_at, duration_ms"
)


def insert_user_sql(mark: Mark) -> str:
    return (
        "INSERT INTO dashboard_users (tenant_id, email, password_hash, role, created_at) "
        f"VALUES {values_sql(mark, 5)}"
    )


def user_values(new: NewDashboardUser) -> tuple[Any, ...]:
    return (new.tenant_id, new.email, new.password_hash, new.role.value, new.created_at)


def user_from_row(row: Any) -> DashboardUser:
    return DashboardUser(
        id=int(row[0]),
        tenant_id=int(row[1]),
        email=row[2],
        password_hash=row[3],
        role=Role(row[4]),
        created_at=int(row[5]),
        last_login_at=None if row[6] is None else int(row[6]),
        sessions_valid_after=int(row[7]),
    )


def summary_from_row(row: Any) -> RequestSummary:
    return RequestSummary(
        batch_id=row[0],
        environment=None if row[1] is None else Environment(row[1]),
        client_pk=row[2],
        endpoint=row[3],
        type=row[4],
        context=row[5],
        http_status=int(row[6]),
        received=int(row[7]),
        created=int(row[8]),
        updated=int(row[9]),
        unchanged=int(row[10]),
        received_at=float(row[11]),
        duration_ms=None if row[12] is None else float(row[12]),
    )


def _environment(b: Binder, environment: Environment) -> str:
    # Requests refused before authentication belong to no environment: both show them.
    return f"(environment = {b(environment.value)} OR environment IS NULL)"


def requests_sql(mark: Mark, flt: RequestFilter) -> tuple[str, list[Any]]:
    """The latest requests of an environment, newest first."""
    b = Binder(mark)
    where = f"tenant_id = {b(flt.tenant_id)} AND {_environment(b, flt.environment)}"
    if flt.status is not None:
        where += f" AND http_status = {b(flt.status)}"
    if flt.rejected is True:
        where += " AND http_status <> 200"
    elif flt.rejected is False:
        where += " AND http_status = 200"
    if flt.before is not None:
        where += f" AND received_at < {b(flt.before)}"
    sql = (
        f"SELECT {SUMMARY_COLUMNS} FROM batches WHERE {where} "
        f"ORDER BY received_at DESC, id DESC LIMIT {b(flt.limit)}"
    )
    return sql, b.params


def request_sql(mark: Mark, tenant_id: int, batch_id: str) -> tuple[str, list[Any]]:
    b = Binder(mark)
    sql = (
        f"SELECT {SUMMARY_COLUMNS}, raw_body, body_truncated, errors, message FROM batches "
        f"WHERE tenant_id = {b(tenant_id)} AND id = {b(batch_id)}"
    )
    return sql, b.params


def detail_from_row(row: Any) -> RequestDetail:
    errors = json.loads(row[15]) if row[15] else {}
    return RequestDetail(
        summary=summary_from_row(row),
        raw_body=None if row[13] is None else bytes(row[13]),
        body_truncated=bool(row[14]),
        errors=errors if isinstance(errors, dict) else {},
        message=row[16],
    )


def traffic_sql(
    mark: Mark, tenant_id: int, environment: Environment, since: int, hour_expr: str
) -> tuple[str, list[Any]]:
    """Accepted and refused requests and elements received, per hour since ``since``."""
    b = Binder(mark)
    sql = (
        f"SELECT {hour_expr} AS h, "
        "SUM(CASE WHEN http_status = 200 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN http_status = 200 THEN 0 ELSE 1 END), "
        "SUM(CASE WHEN http_status = 200 THEN received ELSE 0 END) "
        f"FROM batches WHERE tenant_id = {b(tenant_id)} AND {_environment(b, environment)} "
        f"AND received_at >= {b(float(since))} GROUP BY 1 ORDER BY 1"
    )
    return sql, b.params


def traffic_from_row(row: Any) -> HourlyTraffic:
    return HourlyTraffic(
        hour=int(row[0]), accepted=int(row[1]), rejected=int(row[2]), elements=int(row[3])
    )


def last_accepted_sql(
    mark: Mark, tenant_id: int, environment: Environment
) -> tuple[str, list[Any]]:
    b = Binder(mark)
    sql = (
        "SELECT client_pk, MAX(received_at) FROM batches "
        f"WHERE tenant_id = {b(tenant_id)} AND environment = {b(environment.value)} "
        "AND http_status = 200 AND client_pk IS NOT NULL GROUP BY client_pk"
    )
    return sql, b.params
