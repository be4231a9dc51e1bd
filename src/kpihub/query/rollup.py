"""Combining partial aggregates of fixed slots into calendar buckets (pure).

The store aggregates per slot of ``slot_size(...)`` seconds aligned on the epoch; every
bucket boundary of the answer is a multiple of that size, so each slot falls in
exactly one bucket and the combination is exact: sums and counts add, minima and
maxima compare, ``last`` is the last value of the latest non-empty slot.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce

from kpihub.domain import SlotAggregate


def slot_size(boundaries: Sequence[int]) -> int:
    """The largest slot size that divides every boundary (at most one day).

    Usually 3600 (whole-hour offsets) or 900 (Asia/Kathmandu, +05:45); 86400 for
    days in UTC. Coarser slots mean fewer rows from the store.
    """
    return reduce(math.gcd, boundaries, 86400) or 86400


@dataclass(slots=True)
class Bucket:
    start: int
    end: int
    sum: float = 0.0
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    last: float | None = None
    last_slot: int = -1

    def value(self, agg: str) -> float | int | None:
        if self.count == 0:
            return None
        if agg == "sum":
            return self.sum
        if agg == "avg":
            return self.sum / self.count
        if agg == "min":
            return self.min
        if agg == "max":
            return self.max
        if agg == "count":
            return self.count
        if agg == "last":
            return self.last
        raise ValueError(agg)


@dataclass(frozen=True, slots=True)
class Series:
    group: str | None
    buckets: list[Bucket]


def roll_up(
    parts: Iterable[SlotAggregate], boundaries: Sequence[int], *, grouped: bool
) -> list[Series]:
    """One series per group (ordered by group, no group last), each with every bucket.

    Slots outside ``[boundaries[0], boundaries[-1])`` are ignored. Without
    ``grouped`` there is exactly one series (group None), even when it is empty.
    """
    edges = list(boundaries)
    first, last_edge = edges[0], edges[-1]
    series: dict[str | None, list[Bucket]] = {}

    def fresh() -> list[Bucket]:
        return [Bucket(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]

    if not grouped:
        series[None] = fresh()
    key = None
    # Inline, not a method per part: a series read rolls up thousands of slots.
    for group, slot, total, count, low, high, last in parts:
        if not first <= slot < last_edge:
            continue
        if grouped:
            key = group
        buckets = series.get(key)
        if buckets is None:
            buckets = series[key] = fresh()
        b = buckets[bisect_right(edges, slot) - 1]
        b.sum += total
        b.count += count
        if low < b.min:
            b.min = low
        if high > b.max:
            b.max = high
        if slot > b.last_slot:
            b.last_slot = slot
            b.last = last
    ordered = sorted(series, key=lambda g: (g is None, g or ""))
    return [Series(g, series[g]) for g in ordered]
