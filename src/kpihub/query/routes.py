"""The read API under ``/api/external/{api_version}/kpi``: points, series, leaderboard,
catalog. Bearer token with scope ``kpi:read``; tenant and environment from the token."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kpihub.domain import SCOPE_READ
from kpihub.errors import UnknownApiVersion, ValidationFailed
from kpihub.http.responses import JsonResponse
from kpihub.oauth.bearer import Principal, authenticate
from kpihub.query.buckets import MAX_BUCKETS
from kpihub.query.params import (
    Params,
    encode_cursor,
    parse_leaderboard,
    parse_points,
    parse_series,
)
from kpihub.query.points import point_json, points_csv
from kpihub.query.rollup import roll_up, slot_size
from kpihub.ratelimit import rate_limit_headers
from kpihub.services import Services, services
from kpihub.settings import SUPPORTED_API_VERSIONS


async def _authenticate(request: Request) -> tuple[Services, Principal, dict[str, str]]:
    svc = services(request)
    version = request.path_params["api_version"]
    if version not in SUPPORTED_API_VERSIONS:
        raise UnknownApiVersion(version, SUPPORTED_API_VERSIONS)
    principal = await authenticate(svc, request, SCOPE_READ)
    return svc, principal, rate_limit_headers(request.state.ratelimit, limited=False)


def _params(request: Request) -> Params:
    query = request.query_params
    return {name: query.getlist(name) for name in query}


def _wants_csv(request: Request) -> bool:
    """Whether the client prefers ``text/csv`` over JSON (``Accept``, by q-value)."""
    accept = request.headers.get("accept", "")
    best: tuple[float, int, bool] | None = None
    for position, item in enumerate(accept.split(",")):
        kind, *options = (part.strip() for part in item.split(";"))
        kind = kind.lower()
        if kind == "text/csv":
            csv_wanted = True
        elif kind in ("application/json", "application/*", "*/*"):
            csv_wanted = False
        else:
            continue
        q = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, csv_wanted)
    return best is not None and best[2]


async def list_points(request: Request) -> Response:
    svc, principal, headers = await _authenticate(request)
    tenant = principal.tenant
    q = parse_points(
        _params(request),
        tenant_id=tenant.id,
        environment=principal.environment,
        zone=svc.zone(tenant.timezone),
    )
    # One row more than asked tells whether there is a next page.
    rows = await svc.storage.find_points(
        q.filter, after=q.after, descending=q.descending, limit=q.limit + 1
    )
    page = rows[: q.limit]
    cursor = encode_cursor(q.fingerprint, page[-1].key) if len(rows) > q.limit else None
    if _wants_csv(request):
        if cursor is not None:
            headers["X-Next-Cursor"] = cursor
        return Response(points_csv(page), 200, headers, media_type="text/csv; charset=utf-8")
    return JsonResponse(
        {"data": [point_json(p) for p in page], "next_cursor": cursor}, 200, headers
    )


async def series(request: Request) -> Response:
    svc, principal, headers = await _authenticate(request)
    tenant = principal.tenant
    q = parse_series(
        _params(request),
        tenant_id=tenant.id,
        environment=principal.environment,
        tenant_zone=tenant.timezone,
    )
    parts = await svc.storage.slot_aggregates(
        q.filter,
        slot=slot_size(q.boundaries),
        group_by=q.group_by,
        with_last=q.agg == "last",
    )
    rolled = roll_up(parts, q.boundaries, grouped=q.group_by is not None)
    out: list[dict[str, Any]] = []
    total = 0
    for s in rolled:
        buckets = [
            {"start": b.start, "end": b.end, "value": b.value(q.agg), "count": b.count}
            for b in s.buckets
            if q.fill or b.count
        ]
        total += len(buckets)
        group = None if q.group_by is None else {q.group_by: s.group}
        out.append({"group": group, "buckets": buckets})
    if total > MAX_BUCKETS:
        raise ValidationFailed(
            {
                "group_by": [
                    f"The group_by parameter ({q.group_by}) makes an answer of {total} "
                    f"buckets ({len(rolled)} groups); the limit is {MAX_BUCKETS} buckets per "
                    "answer. Allowed: "
                    "a filter on fewer groups (user_id, location_id, kpi), a shorter range, "
                    "a longer interval, or fill=none."
                ]
            }
        )
    body = {
        "agg": q.agg,
        "interval": q.interval,
        "tz": q.tz,
        "from": q.boundaries[0],
        "to": q.boundaries[-1],
        "series": out,
    }
    return JsonResponse(body, 200, headers)


async def leaderboard(request: Request) -> Response:
    svc, principal, headers = await _authenticate(request)
    tenant = principal.tenant
    q = parse_leaderboard(
        _params(request),
        tenant_id=tenant.id,
        environment=principal.environment,
        zone=svc.zone(tenant.timezone),
    )
    entries = await svc.storage.leaderboard(q.filter, by=q.by, agg=q.agg, limit=q.limit)
    body = {
        "kpi": q.kpi,
        "by": q.by,
        "agg": q.agg,
        "from": q.filter.start,
        "to": q.filter.end,
        "entries": [
            {"rank": e.rank, q.by: e.id, "value": e.value, "count": e.count} for e in entries
        ],
    }
    return JsonResponse(body, 200, headers)


async def catalog(request: Request) -> Response:
    svc, principal, headers = await _authenticate(request)
    entries = await svc.storage.catalog(principal.tenant.id, principal.environment)
    data = [
        {
            "type": e.type,
            "context": e.context,
            "kpi": e.kpi,
            "units": list(e.units),
            "points": e.points,
            "first_timestamp": e.first_timestamp,
            "last_timestamp": e.last_timestamp,
            "users": e.users,
            "locations": e.locations,
        }
        for e in entries
    ]
    return JsonResponse({"data": data}, 200, headers)


routes = [
    Route("/api/external/{api_version}/kpi", list_points, methods=["GET"]),
    Route("/api/external/{api_version}/kpi/series", series, methods=["GET"]),
    Route("/api/external/{api_version}/kpi/leaderboard", leaderboard, methods=["GET"]),
    Route("/api/external/{api_version}/kpi/catalog", catalog, methods=["GET"]),
]
