"""The overview: elements received per day, each client's last accepted batch, and the
share of requests refused in the last 24 hours."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from starlette.responses import Response

from kpihub.web.page import Ctx, page, render

DAYS = 30


@page()
async def overview(ctx: Ctx) -> Response:
    storage, zone = ctx.svc.storage, ctx.zone
    now = time.time()
    today = datetime.fromtimestamp(now, zone).date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    since = int(datetime.combine(days[0], datetime.min.time(), zone).timestamp())
    traffic = await storage.hourly_traffic(ctx.tenant.id, ctx.environment, since)
    per_day = dict.fromkeys(days, 0)
    for t in traffic:
        day = datetime.fromtimestamp(t.hour, zone).date()
        if day in per_day:
            per_day[day] += t.elements
    recent = [t for t in traffic if t.hour >= (now - 86400) // 3600 * 3600]
    accepted = sum(t.accepted for t in recent)
    rejected = sum(t.rejected for t in recent)
    total = accepted + rejected
    clients = [
        c for c in await storage.list_clients(ctx.tenant.id) if c.environment == ctx.environment
    ]
    last = await storage.last_accepted(ctx.tenant.id, ctx.environment)
    chart = {
        "type": "bar",
        "label": "elements received",
        "labels": [d.isoformat() for d in days],
        "values": list(per_day.values()),
    }
    return render(
        ctx,
        "overview.html",
        chart=chart,
        per_day=per_day,
        accepted=accepted,
        rejected=rejected,
        error_rate=(rejected / total * 100) if total else None,
        clients=clients,
        last=last,
        points=await storage.count_points(ctx.tenant.id, ctx.environment),
    )
