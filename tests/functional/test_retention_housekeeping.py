"""The server's housekeeping enforces each tenant's retention by itself (on a real app)."""

from __future__ import annotations

import time

from kpihub.settings import Settings
from kpihub.storage.migrate import upgrade
from tests.functional.harness import open_harness
from tests.retention_data import all_points, kept_batches, kept_points, seed, store_on


def test_the_server_purges_data_past_each_tenants_retention(settings: Settings) -> None:
    url = settings.database_url
    upgrade(url)
    now = int(time.time())
    with store_on(url) as (store, runner):
        acme = runner.run(store.create_tenant("acme", "UTC", now))
        beta = runner.run(store.create_tenant("beta", "UTC", now))
        for t in (acme, beta):
            runner.run(seed(store, t.id, now))
        runner.run(store.set_retention(acme.id, 30))

    def points(tenant_id: int) -> set[tuple[str, str, str]]:
        rows = h.rows(
            "SELECT environment, context, element_id FROM data_points WHERE tenant_id = ?",
            tenant_id,
        )
        return {(str(e), str(c), str(i)) for e, c, i in rows}

    # Housekeeping runs when the server starts, then every 5 minutes.
    with open_harness(settings, tenant=False) as h:
        deadline = time.monotonic() + 60
        while points(acme.id) != kept_points(30):
            assert time.monotonic() < deadline, "the server did not purge acme's old data"
            time.sleep(0.05)
        batches = {r[0] for r in h.rows("SELECT id FROM batches WHERE tenant_id = ?", acme.id)}
        deadline = time.monotonic() + 60
        while batches != kept_batches(acme.id, 30):
            assert time.monotonic() < deadline, "the server did not purge acme's old requests"
            time.sleep(0.05)
            batches = {r[0] for r in h.rows("SELECT id FROM batches WHERE tenant_id = ?", acme.id)}
        assert points(beta.id) == all_points()  # no retention: everything stays
