"""Rolling per-slot partial aggregates up into buckets (pure)."""

from __future__ import annotations

import pytest

from kpihub.domain import SlotAggregate
from kpihub.query.rollup import roll_up, slot_size

H = 3600


def part(slot: int, *values: float, group: str | None = None) -> SlotAggregate:
    return SlotAggregate(
        group=group,
        slot=slot,
        sum=sum(values),
        points=len(values),
        min=min(values),
        max=max(values),
        last=values[-1],
    )


def test_slot_size_divides_every_boundary() -> None:
    assert slot_size([0, 86400, 2 * 86400]) == 86400
    assert slot_size([82800, 82800 + 86400, 82800 + 2 * 86400 - 3600]) == 3600
    assert slot_size([18 * H + 900, 42 * H + 900]) == 900  # Asia/Kathmandu days
    assert slot_size([1, 86400]) == 1


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("sum", [6.0, None, -2.0]),
        ("avg", [2.0, None, -2.0]),
        ("min", [1.0, None, -2.0]),
        ("max", [3.0, None, -2.0]),
        ("count", [3, None, 1]),
        ("last", [2.0, None, -2.0]),
    ],
)
def test_slots_combine_into_buckets(agg: str, expected: list[float | None]) -> None:
    edges = [0, 2 * H, 4 * H, 6 * H]
    # Slot order from the store is arbitrary; "last" comes from the latest slot.
    parts = [part(H, 3.0, 2.0), part(0, 1.0), part(5 * H, -2.0)]
    (series,) = roll_up(parts, edges, grouped=False)
    assert series.group is None
    assert [b.value(agg) for b in series.buckets] == expected
    assert [b.count for b in series.buckets] == [3, 0, 1]
    assert [(b.start, b.end) for b in series.buckets] == [
        (0, 2 * H),
        (2 * H, 4 * H),
        (4 * H, 6 * H),
    ]


def test_groups_are_ordered_with_the_missing_group_last() -> None:
    edges = [0, H]
    parts = [part(0, 1.0, group="b"), part(0, 2.0, group=None), part(0, 3.0, group="a")]
    rolled = roll_up(parts, edges, grouped=True)
    assert [s.group for s in rolled] == ["a", "b", None]
    assert [s.buckets[0].value("sum") for s in rolled] == [3.0, 1.0, 2.0]


def test_no_parts_gives_one_empty_series_or_none_when_grouped() -> None:
    (empty,) = roll_up([], [0, H, 2 * H], grouped=False)
    assert [b.value("sum") for b in empty.buckets] == [None, None]
    assert roll_up([], [0, H], grouped=True) == []


def test_slots_outside_the_range_are_ignored() -> None:
    (series,) = roll_up([part(-H, 5.0), part(H, 1.0), part(2 * H, 7.0)], [0, 2 * H], grouped=False)
    assert series.buckets[0].value("sum") == 1.0
