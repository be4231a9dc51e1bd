"""``kpihub retention set|clear|show|purge`` with the real command, on both backends.

The old data is written through a real store first (``tests.retention_data``): the
ingestion endpoint stamps every batch with the time it arrives, and these tests need
requests received months ago.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kpihub.domain import Tenant
from kpihub.storage.migrate import upgrade
from tests.functional.server import Kpihub
from tests.functional.test_cli import one_line
from tests.retention_data import all_points, batch_ages, kept_batches, kept_points, seed, store_on


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Kpihub:
    """The command on a database with the tenants acme, beta and gamma (made in-process:
    what is under test here is ``kpihub retention``)."""
    upgrade(database_url)
    with store_on(database_url) as (store, runner):
        for name in ("acme", "beta", "gamma"):
            runner.run(store.create_tenant(name, "UTC", int(time.time())))
    return Kpihub(tmp_path, database_url)


def seed_all(cli: Kpihub) -> dict[str, Tenant]:
    """The seeded data in every tenant of ``cli``, dated from now."""
    now = int(time.time())
    with store_on(cli.database_url) as (store, runner):
        tenants = {t.name: t for t in runner.run(store.list_tenants())}
        for t in tenants.values():
            runner.run(seed(store, t.id, now))
    return tenants


def points(cli: Kpihub, tenant: Tenant) -> set[tuple[str, str, str]]:
    rows = cli.rows(
        "SELECT environment, context, element_id FROM data_points WHERE tenant_id = ?", tenant.id
    )
    return {(str(e), str(c), str(i)) for e, c, i in rows}


def batches(cli: Kpihub, tenant: Tenant) -> set[str]:
    return {str(r[0]) for r in cli.rows("SELECT id FROM batches WHERE tenant_id = ?", tenant.id)}


def test_set_show_and_clear(cli: Kpihub) -> None:
    made = cli.run("retention", "set", "--tenant", "acme", "--days", "30")
    assert "acme keeps 30 days of data" in one_line(made.stdout)
    assert cli.json("retention", "set", "-t", "gamma", "--days", "365") == {
        "tenant": "gamma",
        "days": 365,
    }
    assert cli.json("retention", "show") == [
        {"tenant": "acme", "days": 30},
        {"tenant": "beta", "days": None},
        {"tenant": "gamma", "days": 365},
    ]
    assert cli.json("retention", "show", "--tenant", "acme") == [{"tenant": "acme", "days": 30}]
    table = cli.run("retention", "show").stdout
    assert any("acme" in line and "30 days" in line for line in table.splitlines()), table
    assert any("beta" in line and "forever" in line for line in table.splitlines()), table
    # The setting is on the tenant: ``tenant list`` shows it too.
    listed = {t["name"]: t["retention_days"] for t in cli.json("tenant", "list")}
    assert listed == {"acme": 30, "beta": None, "gamma": 365}

    cleared = cli.run("retention", "clear", "--tenant", "acme")
    assert "acme keeps its data forever" in one_line(cleared.stdout)
    assert cli.json("retention", "show", "-t", "acme") == [{"tenant": "acme", "days": None}]


def test_bad_input_is_refused_with_the_field_the_value_and_the_fix(cli: Kpihub) -> None:
    for days, shown in (("0", "0"), ("-5", "-5"), ("36501", "36501"), ("a month", "'a month'")):
        result = cli.run("retention", "set", "--tenant", "acme", "--days", days, ok=False)
        message = one_line(result.stderr)
        assert f"--days: {shown} is not valid." in message, message
        assert "Give a whole number of days from 1 to 36500" in message
        assert "to keep data forever, use 'kpihub retention clear --tenant acme'" in message
    for args in (
        ["set", "--tenant", "nobody", "--days", "3"],
        ["clear", "--tenant", "nobody"],
        ["show", "--tenant", "nobody"],
        ["purge", "--tenant", "nobody"],
    ):
        result = cli.run("retention", *args, ok=False)
        assert "No tenant named 'nobody'. List them with 'kpihub tenant list'." in one_line(
            result.stderr
        ), result
    assert cli.json("retention", "show", "-t", "acme") == [{"tenant": "acme", "days": None}]


def test_purge_deletes_exactly_the_old_data_of_that_tenant(cli: Kpihub) -> None:
    tenants = seed_all(cli)
    acme, beta, gamma = tenants["acme"], tenants["beta"], tenants["gamma"]
    cli.run("retention", "set", "-t", "acme", "--days", "30")
    cli.run("retention", "set", "-t", "gamma", "--days", "30")
    old_points = len(all_points()) - len(kept_points(30))
    old_batches = len(batch_ages(acme.id)) - len(kept_batches(acme.id, 30))

    (dry,) = cli.json("retention", "purge", "--tenant", "acme", "--dry-run")
    assert (dry["tenant"], dry["days"], dry["dry_run"]) == ("acme", 30, True)
    assert (dry["points"], dry["batches"]) == (old_points, old_batches)
    assert points(cli, acme) == all_points()  # a dry run deletes nothing
    assert batches(cli, acme) == set(batch_ages(acme.id))

    (done,) = cli.json("retention", "purge", "--tenant", "acme")
    assert (done["points"], done["batches"], done["dry_run"]) == (old_points, old_batches, False)
    assert abs(done["cutoff"] - (time.time() - 30 * 86_400)) < 600
    assert points(cli, acme) == kept_points(30)
    assert batches(cli, acme) == kept_batches(acme.id, 30)
    # Only the tenant named: gamma has the same retention and keeps everything for now,
    # beta has none.
    for other in (beta, gamma):
        assert points(cli, other) == all_points()
        assert batches(cli, other) == set(batch_ages(other.id))


def test_purge_without_a_tenant_purges_every_tenant_with_a_retention(cli: Kpihub) -> None:
    tenants = seed_all(cli)
    cli.run("retention", "set", "-t", "acme", "--days", "30")
    cli.run("retention", "set", "-t", "gamma", "--days", "200")

    table = cli.run("retention", "purge", "--dry-run").stdout
    assert "dry run: nothing deleted" in table
    assert "beta" not in table

    reports = {r["tenant"]: r for r in cli.json("retention", "purge")}
    assert set(reports) == {"acme", "gamma"}
    assert points(cli, tenants["acme"]) == kept_points(30)
    assert points(cli, tenants["gamma"]) == kept_points(200)
    assert batches(cli, tenants["gamma"]) == kept_batches(tenants["gamma"].id, 200)
    assert reports["gamma"]["points"] == len(all_points()) - len(kept_points(200))
    assert points(cli, tenants["beta"]) == all_points()


def test_purge_of_a_tenant_without_retention_is_refused(cli: Kpihub) -> None:
    seed_all(cli)
    result = cli.run("retention", "purge", "--tenant", "beta", ok=False)
    message = one_line(result.stderr)
    assert "--tenant: 'beta' is not valid." in message
    assert "kpihub retention set --tenant beta --days N" in message
    assert cli.rows("SELECT COUNT(*) FROM data_points") == [(3 * len(all_points()),)]


def test_purge_with_no_retention_anywhere_says_so(cli: Kpihub) -> None:
    result = cli.run("retention", "purge")
    assert "No tenant has a retention; nothing to purge." in result.stdout
    assert cli.json("retention", "purge") == []
