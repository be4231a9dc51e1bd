"""The KPI explorer: a series chart with its points, or a leaderboard; CSV of either.

Parameters go through the query API's own parsers (``kpihub.query.params``) and the
same store reads and roll-up, so the dashboard and ``/api/external/v1/kpi/...`` can
never disagree.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams
from starlette.responses import Response

from kpihub.domain import AGGREGATES, RANK_BY, PointFilter, RankedEntry, StoredPoint
from kpihub.errors import ValidationFailed
from kpihub.query.params import (
    POINTS_MAX_LIMIT,
    parse_leaderboard,
    parse_points,
    parse_series,
)
from kpihub.query.points import write_points_csv
from kpihub.query.rollup import roll_up, slot_size
from kpihub.web.page import Ctx, page, render

RANGES: dict[str, str] = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "custom": "Custom",
}
VIEWS = ("series", "leaderboard")
CHARTS = ("line", "bar")
POINTS_SHOWN = 200
LEADERS_SHOWN = 25
LABEL_FORMATS = {"hour": "%m-%d %H:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m"}


@dataclass
class Choice:
    """What the explorer's form asks for, with defaults filled in."""

    view: str
    context: str
    kpi: str
    user_id: str
    location_id: str
    range: str
    start_date: str
    end_date: str
    agg: str
    chart: str
    by: str
    start: int = 0
    end: int = 0
    interval: str = "day"
    errors: dict[str, list[str]] = field(default_factory=dict)

    def query(self, **extra: str) -> dict[str, list[str]]:
        """Parameters as the query API takes them."""
        params = {
            "context": [self.context],
            "kpi": [self.kpi],
            "from": [str(self.start)],
            "to": [str(self.end)],
            "user_id": [self.user_id],
            "location_id": [self.location_id],
        }
        params.update({k: [v] for k, v in extra.items()})
        return params

    def link(self) -> dict[str, str]:
        return {
            "view": self.view,
            "context": self.context,
            "kpi": self.kpi,
            "user_id": self.user_id,
            "location_id": self.location_id,
            "range": self.range,
            "from": self.start_date,
            "to": self.end_date,
            "agg": self.agg,
            "chart": self.chart,
            "by": self.by,
        }


def _pick(value: str | None, allowed: tuple[str, ...] | list[str], default: str) -> str:
    return value if value is not None and value in allowed else default


def _midnight(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), zone).timestamp())


def _range(c: Choice, zone: ZoneInfo, now: datetime) -> None:
    """Fill ``start``/``end`` (a half-open range of whole local days) and the interval."""
    today = now.astimezone(zone).date()
    tomorrow = today + timedelta(days=1)
    first, last = today - timedelta(days=6), tomorrow
    if c.range == "today":
        first = today
    elif c.range == "30d":
        first = today - timedelta(days=29)
    elif c.range == "month":
        first = today.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    elif c.range == "custom":
        try:
            first = date.fromisoformat(c.start_date)
            last = date.fromisoformat(c.end_date) + timedelta(days=1)
        except ValueError:
            c.errors["range"] = ["Give both dates of a custom range as YYYY-MM-DD."]
            first, last = today - timedelta(days=6), tomorrow
        if last <= first:
            c.errors["range"] = ["The custom range must end on or after the day it starts."]
            first, last = last - timedelta(days=1), last
    c.start_date, c.end_date = first.isoformat(), (last - timedelta(days=1)).isoformat()
    c.start, c.end = _midnight(first, zone), _midnight(last, zone)
    days = (last - first).days
    c.interval = (
        "hour" if days <= 2 else "day" if days <= 120 else "week" if days <= 730 else "month"
    )


def _choice(q: QueryParams, names: list[tuple[str, str]], zone: ZoneInfo) -> Choice:
    """What the query string asks for, among ``names`` (the stored (context, kpi))."""
    contexts = list(dict.fromkeys(context for context, _ in names))
    context = _pick(q.get("context"), contexts, contexts[0] if contexts else "")
    kpis = [kpi for other, kpi in names if other == context]
    c = Choice(
        view=_pick(q.get("view"), VIEWS, "series"),
        context=context,
        kpi=_pick(q.get("kpi"), kpis, kpis[0] if kpis else ""),
        user_id=(q.get("user_id") or "").strip(),
        location_id=(q.get("location_id") or "").strip(),
        range=_pick(q.get("range"), tuple(RANGES), "7d"),
        start_date=q.get("from") or "",
        end_date=q.get("to") or "",
        agg=_pick(q.get("agg"), AGGREGATES, "sum"),
        chart=_pick(q.get("chart"), CHARTS, "line"),
        by=_pick(q.get("by"), RANK_BY, "user_id"),
    )
    _range(c, zone, datetime.now(zone))
    return c


async def _series(ctx: Ctx, c: Choice) -> dict[str, Any]:
    q = parse_series(
        c.query(interval=c.interval, agg=c.agg),
        tenant_id=ctx.tenant.id,
        environment=ctx.environment,
        tenant_zone=ctx.tenant.timezone,
    )
    parts = await ctx.svc.storage.slot_aggregates(
        q.filter, slot=slot_size(q.boundaries), group_by=None, with_last=q.agg == "last"
    )
    (series,) = roll_up(parts, q.boundaries, grouped=False)
    fmt = LABEL_FORMATS[q.interval]
    return {
        "labels": [datetime.fromtimestamp(b.start, ctx.zone).strftime(fmt) for b in series.buckets],
        "values": [b.value(q.agg) for b in series.buckets],
        "counts": [b.count for b in series.buckets],
    }


async def _points(ctx: Ctx, c: Choice, limit: int) -> tuple[list[StoredPoint], bool]:
    q = parse_points(
        c.query(limit=str(limit), order="desc"),
        tenant_id=ctx.tenant.id,
        environment=ctx.environment,
        zone=ctx.zone,
    )
    rows = await ctx.svc.storage.find_points(q.filter, after=None, descending=True, limit=limit + 1)
    return rows[:limit], len(rows) > limit


async def _unit(ctx: Ctx, c: Choice) -> str:
    """The units of the chosen KPI's latest point (one index seek), for the chart."""
    flt = PointFilter(ctx.tenant.id, ctx.environment, context=c.context, kpis=(c.kpi,))
    latest = await ctx.svc.storage.find_points(flt, after=None, descending=True, limit=1)
    return (latest[0].units or "") if latest else ""


async def _leaders(ctx: Ctx, c: Choice, limit: int) -> list[RankedEntry]:
    q = parse_leaderboard(
        c.query(by=c.by, agg=c.agg, limit=str(limit)),
        tenant_id=ctx.tenant.id,
        environment=ctx.environment,
        zone=ctx.zone,
    )
    return await ctx.svc.storage.leaderboard(q.filter, by=q.by, agg=q.agg, limit=q.limit)


@page()
async def explorer(ctx: Ctx) -> Response:
    # The stored contexts and KPIs, not the catalog: that counts every point.
    names = await ctx.svc.storage.kpi_names(ctx.tenant.id, ctx.environment)
    c = _choice(ctx.request.query_params, names, ctx.zone)
    chart: dict[str, Any] | None = None
    points: list[StoredPoint] = []
    more = False
    leaders: list[RankedEntry] = []
    if names and not c.errors:
        try:
            if c.view == "series":
                chart = await _series(ctx, c)
                points, more = await _points(ctx, c, POINTS_SHOWN)
            else:
                leaders = await _leaders(ctx, c, LEADERS_SHOWN)
                chart = {
                    "labels": [e.id for e in leaders],
                    "values": [e.value for e in leaders],
                    "counts": [e.count for e in leaders],
                }
        except ValidationFailed as exc:
            c.errors.update(exc.errors)
    if chart is not None:
        unit = await _unit(ctx, c)
        chart.update(
            {
                "type": "bar" if c.view == "leaderboard" else c.chart,
                "label": f"{c.kpi} ({c.agg}{', ' + unit if unit else ''})",
            }
        )
    return render(
        ctx,
        "explorer.html",
        c=c,
        names=names,
        contexts=list(dict.fromkeys(context for context, _ in names)),
        kpis=[kpi for context, kpi in names if context == c.context],
        ranges=RANGES,
        aggregates=AGGREGATES,
        rank_by=RANK_BY,
        chart=chart,
        points=points,
        more=more,
        leaders=leaders,
        points_shown=POINTS_SHOWN,
    )


@page()
async def explorer_csv(ctx: Ctx) -> Response:
    names = await ctx.svc.storage.kpi_names(ctx.tenant.id, ctx.environment)
    c = _choice(ctx.request.query_params, names, ctx.zone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if c.view == "leaderboard":
        writer.writerow(("rank", c.by, "value", "count"))
        if names and not c.errors:
            for e in await _leaders(ctx, c, LEADERS_SHOWN):
                writer.writerow((e.rank, e.id, repr(e.value), e.count))
    else:
        points: list[StoredPoint] = []
        if names and not c.errors:
            points, _ = await _points(ctx, c, POINTS_MAX_LIMIT)
        write_points_csv(writer, points)
    name = f"{ctx.tenant.name}-{ctx.environment.value}-{c.view}-{c.kpi or 'none'}.csv"
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return Response(
        out.getvalue().encode(),
        200,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
        media_type="text/csv; charset=utf-8",
    )
