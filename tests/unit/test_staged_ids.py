"""What the SQLite writer knows of the staging table: a superset of its ids, its rows."""

from __future__ import annotations

from kpihub.storage._sqlite_staging import StagedIds

HEAD = (1, "production", "pos", "sales")
OTHER = (1, "production", "pos", "profit")


def test_only_ids_staged_in_the_same_scope_may_be_staged() -> None:
    staged = StagedIds()
    assert not staged.may_hold(HEAD, ["1"])

    staged.add(HEAD, ["1", "2"])

    assert staged.may_hold(HEAD, ["3", "2"])
    assert not staged.may_hold(HEAD, ["3", "4"])
    assert not staged.may_hold(OTHER, ["1", "2"])


def test_a_committed_merge_forgets_every_id() -> None:
    staged = StagedIds()
    staged.add(HEAD, ["1"])

    staged.emptied()

    assert not staged.may_hold(HEAD, ["1"])


def test_while_unknown_any_id_may_be_staged_until_a_merge() -> None:
    staged = StagedIds(known=False)
    assert staged.may_hold(OTHER, ["anything"])

    staged.emptied()
    staged.add(HEAD, ["1"])
    assert not staged.may_hold(OTHER, ["1"])

    staged.unknown()
    assert staged.may_hold(OTHER, ["1"])


def test_waiting_counts_staged_rows_and_is_never_zero_while_unknown() -> None:
    staged = StagedIds()
    assert staged.waiting == 0
    staged.add(HEAD, ["1", "2"])
    staged.add(OTHER, ["1"])
    assert staged.waiting == 3

    staged.unknown()
    assert staged.waiting == 3
    staged.emptied()
    assert staged.waiting == 0

    staged.unknown()  # a crash's leftovers: how many is not known, but some
    assert staged.waiting == 1
