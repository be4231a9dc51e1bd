"""Retention per tenant: how long data is kept, and the purge that enforces it.

A tenant's retention is a whole number of days (None: forever). Its purge deletes the
data points whose *timestamp* is older than that, and the requests (accepted batches
with their raw bodies, refusals kept for the debugger) *received* before it, since
those hold the same data. Used by ``kpihub retention`` and by the server's
housekeeping; each function takes a started ``Storage`` and returns domain objects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kpihub import admin
from kpihub.domain import Tenant
from kpihub.errors import InvalidInput
from kpihub.storage import Storage

DAY = 86_400
MAX_DAYS = 36_500  # a century: anything longer is "forever", which is clearing it


@dataclass(frozen=True)
class PurgeReport:
    """One tenant's purge: what was deleted (or, with ``dry_run``, would be)."""

    tenant: str
    days: int
    cutoff: int  # epoch seconds: points before it and requests received before it go
    points: int
    batches: int
    dry_run: bool


def cutoff(days: int, now: int) -> int:
    return now - days * DAY


def _bad_days(tenant_name: str, days: object) -> InvalidInput:
    return InvalidInput(
        "--days",
        days,
        f"Give a whole number of days from 1 to {MAX_DAYS}; to keep data forever, "
        f"use 'kpihub retention clear --tenant {tenant_name}'.",
    )


def parse_days(tenant_name: str, text: str) -> int:
    """``--days`` as typed: a whole number (the range is checked by ``set_retention``)."""
    try:
        return int(text.strip())
    except ValueError:
        raise _bad_days(tenant_name, text) from None


async def set_retention(storage: Storage, tenant_name: str, days: int) -> Tenant:
    if not 1 <= days <= MAX_DAYS:
        raise _bad_days(tenant_name, days)
    t = await admin.tenant(storage, tenant_name)
    return await storage.set_retention(t.id, days)


async def clear_retention(storage: Storage, tenant_name: str) -> Tenant:
    t = await admin.tenant(storage, tenant_name)
    return await storage.set_retention(t.id, None)


async def tenants(storage: Storage, tenant_name: str | None = None) -> list[Tenant]:
    """The named tenant, or every tenant."""
    if tenant_name is not None:
        return [await admin.tenant(storage, tenant_name)]
    return await storage.list_tenants()


async def purge(
    storage: Storage,
    tenant_name: str | None = None,
    *,
    dry_run: bool = False,
    now: int | None = None,
) -> list[PurgeReport]:
    """Purge the named tenant, or every tenant that has a retention (the others are left
    alone). A named tenant without a retention is an error: nothing would be purged."""
    now = int(time.time()) if now is None else now
    chosen = await tenants(storage, tenant_name)
    if tenant_name is not None and chosen[0].retention_days is None:
        raise InvalidInput(
            "--tenant",
            tenant_name,
            "This tenant keeps its data forever (no retention is set); set one with "
            f"'kpihub retention set --tenant {tenant_name} --days N'.",
        )
    reports = []
    for t in chosen:
        if t.retention_days is None:
            continue
        before = cutoff(t.retention_days, now)
        counts = await storage.purge_before(t.id, before, dry_run=dry_run)
        reports.append(
            PurgeReport(
                tenant=t.name,
                days=t.retention_days,
                cutoff=before,
                points=counts.points,
                batches=counts.batches,
                dry_run=dry_run,
            )
        )
    return reports
