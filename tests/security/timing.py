"""Whether two kinds of request take measurably different times, robust to a busy machine.

The samples are taken in pairs, one of each kind, in a random order within each pair,
so that anything slowing the machine down (other processes, a garbage collection,
frequency scaling) falls on both kinds alike. Two statistics of the paired differences
then decide:

- the **sign test**: with no difference, each pair is as likely to favour one kind as
  the other, so the number of pairs where the first kind was slower is binomial(n, ½);
  ``z`` is how many standard deviations it lies from n/2;
- the **shift**: the median of the paired differences, relative to the median time.

Two kinds are told apart only when the difference is both significant (``|z|`` beyond
``z_limit``) and material (the shift beyond ``tolerance``). Either alone is not enough:
a microsecond of difference is significant with enough pairs but tells an attacker
behind a network nothing, and a large shift in a handful of noisy pairs is chance.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    pairs: int
    median_a: float  # seconds
    median_b: float
    shift: float  # median of (a - b) over the pairs, seconds
    z: float  # sign test: (pairs where a was slower - n/2) / sqrt(n/4)

    @property
    def relative_shift(self) -> float:
        return self.shift / statistics.median([self.median_a, self.median_b])

    def distinguishable(self, *, tolerance: float = 0.05, z_limit: float = 4.0) -> bool:
        return abs(self.z) > z_limit and abs(self.relative_shift) > tolerance

    def __str__(self) -> str:
        return (
            f"{self.pairs} pairs: median a {self.median_a * 1e3:.3f} ms, median b "
            f"{self.median_b * 1e3:.3f} ms, paired shift {self.shift * 1e6:+.1f} us "
            f"({self.relative_shift:+.1%}), sign test z {self.z:+.2f}"
        )


def compare(a: list[float], b: list[float]) -> Comparison:
    """Compare paired samples: ``a[i]`` and ``b[i]`` were taken together."""
    assert len(a) == len(b) and a, "paired samples of equal, non-zero length"
    differences = [x - y for x, y in zip(a, b, strict=True)]
    untied = [d for d in differences if d != 0]
    slower = sum(1 for d in untied if d > 0)
    n = len(untied)
    z = (slower - n / 2) / math.sqrt(n / 4) if n else 0.0
    return Comparison(
        pairs=len(a),
        median_a=statistics.median(a),
        median_b=statistics.median(b),
        shift=statistics.median(differences),
        z=z,
    )


def measure_pairs(
    first: Callable[[], object], second: Callable[[], object], pairs: int, seed: int = 0
) -> Comparison:
    """Time ``first`` and ``second`` ``pairs`` times each, interleaved in random order."""
    order = random.Random(seed)
    a: list[float] = []
    b: list[float] = []
    for _ in range(pairs):
        runs = [(first, a), (second, b)]
        order.shuffle(runs)
        for call, sink in runs:
            started = time.perf_counter()
            call()
            sink.append(time.perf_counter() - started)
    return compare(a, b)
