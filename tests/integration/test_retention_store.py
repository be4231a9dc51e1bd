"""Retention through the storage protocol, on SQLite and PostgreSQL: the setting, the
purge in small chunks, the dry run, and what stays."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kpihub import retention
from kpihub.domain import Environment, Tenant
from kpihub.errors import NotFound
from kpihub.storage import Storage
from kpihub.storage.migrate import upgrade
from tests import databases
from tests.integration.test_store import started_store
from tests.retention_data import (
    DAY,
    all_points,
    batch_ages,
    kept_batches,
    kept_points,
    seed,
)

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Storage]:
    upgrade(database_url)
    async with started_store(database_url) as storage:
        yield storage


def points(url: str, tenant: Tenant) -> set[tuple[str, str, str]]:
    found = databases.rows(
        url,
        "SELECT environment, context, element_id FROM data_points WHERE tenant_id = ?",
        tenant.id,
    )
    return {(str(e), str(c), str(i)) for e, c, i in found}


def batches(url: str, tenant: Tenant) -> set[str]:
    return {
        str(r[0])
        for r in databases.rows(url, "SELECT id FROM batches WHERE tenant_id = ?", tenant.id)
    }


async def test_retention_is_kept_on_the_tenant(store: Storage) -> None:
    made = await store.create_tenant("acme", "UTC", 1)
    assert made.retention_days is None
    assert (await store.set_retention(made.id, 30)).retention_days == 30
    found = await store.get_tenant("acme")
    assert found is not None and found.retention_days == 30
    assert [t.retention_days for t in await store.list_tenants()] == [30]
    assert (await store.set_retention(made.id, None)).retention_days is None
    with pytest.raises(NotFound):
        await store.set_retention(made.id + 1000, 5)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
async def test_purge_in_chunks_deletes_exactly_the_old_rows(
    database_url: str, store: Storage, chunk: int
) -> None:
    acme = await store.create_tenant("acme", "UTC", 1)
    beta = await store.create_tenant("beta", "UTC", 1)
    await seed(store, acme.id, NOW)
    await seed(store, beta.id, NOW)

    counts = await store.purge_before(acme.id, NOW - 30 * DAY, chunk=chunk)

    assert points(database_url, acme) == kept_points(30)
    assert batches(database_url, acme) == kept_batches(acme.id, 30)
    assert counts.points == len(all_points()) - len(kept_points(30))
    assert counts.batches == len(batch_ages(acme.id)) - len(kept_batches(acme.id, 30))
    # The other tenant's data, as old as it is, is untouched.
    assert points(database_url, beta) == all_points()
    assert batches(database_url, beta) == set(batch_ages(beta.id))
    # Nothing is left to purge.
    again = await store.purge_before(acme.id, NOW - 30 * DAY, chunk=chunk)
    assert (again.points, again.batches) == (0, 0)


async def test_dry_run_counts_and_deletes_nothing(database_url: str, store: Storage) -> None:
    acme = await store.create_tenant("acme", "UTC", 1)
    await seed(store, acme.id, NOW)
    counts = await store.purge_before(acme.id, NOW - 30 * DAY, dry_run=True)
    assert counts.points == len(all_points()) - len(kept_points(30))
    assert counts.batches == len(batch_ages(acme.id)) - len(kept_batches(acme.id, 30))
    assert points(database_url, acme) == all_points()
    assert batches(database_url, acme) == set(batch_ages(acme.id))


async def test_a_point_at_the_cutoff_is_kept(database_url: str, store: Storage) -> None:
    acme = await store.create_tenant("acme", "UTC", 1)
    await store.set_retention(acme.id, 29)
    await seed(store, acme.id, NOW)
    # The 29-day-old points are exactly at the cutoff: "older than 29 days" spares them.
    (report,) = await retention.purge(store, "acme", now=NOW)
    assert report.cutoff == NOW - 29 * DAY
    assert points(database_url, acme) == kept_points(30)
    assert report.points == len(all_points()) - len(kept_points(30))


async def test_purge_all_skips_tenants_without_retention(database_url: str, store: Storage) -> None:
    acme = await store.create_tenant("acme", "UTC", 1)
    beta = await store.create_tenant("beta", "UTC", 1)
    gamma = await store.create_tenant("gamma", "UTC", 1)
    for t in (acme, beta, gamma):
        await seed(store, t.id, NOW)
    await store.set_retention(acme.id, 30)
    await store.set_retention(gamma.id, 365)

    reports = await retention.purge(store, now=NOW)

    assert [(r.tenant, r.days) for r in reports] == [("acme", 30), ("gamma", 365)]
    assert points(database_url, acme) == kept_points(30)
    assert points(database_url, beta) == all_points()
    assert points(database_url, gamma) == kept_points(365)
    assert batches(database_url, gamma) == kept_batches(gamma.id, 365)


async def test_kpi_names_lists_what_holds_points_and_forgets_what_the_purge_emptied(
    store: Storage,
) -> None:
    acme = await store.create_tenant("acme", "UTC", 1)
    beta = await store.create_tenant("beta", "UTC", 1)
    await seed(store, acme.id, NOW)
    expected = [("hr", "bonus"), ("hr", "revenue"), ("sales", "bonus"), ("sales", "revenue")]
    for environment in Environment:
        assert await store.kpi_names(acme.id, environment) == expected
    assert await store.kpi_names(beta.id, Environment.TESTING) == []

    await store.purge_before(acme.id, NOW + DAY)  # every point is older

    assert await store.kpi_names(acme.id, Environment.TESTING) == []
