"""Deterministic KPI points, and the same points as kpihub batches or InfluxDB line protocol.

    python -m bench.points --count 5 [--seed 7]     # print a few, to look at them

Every system in a comparison is sent exactly the same points: ``generate(seed, start,
count)`` gives points ``start .. start+count-1`` of one endless seeded stream (point n
is a function of the seed and n alone), so any run can take a fresh slice of new
points. A point is what an element is: an id, a user and their location, a KPI, a
value, a time.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

USERS = 5_000
LOCATIONS = 300
KPIS = (
    *("device_sales", "bonuses", "points", "profit", "experience", "revenue", "items_sold"),
    *("returns", "basket_size", "margin", "visits", "conversion", "upsells", "hours"),
    *("overtime", "absence", "training", "nps", "reviews", "complaints"),
)
TYPE = "bench-pos"
CONTEXT = "sales"
UNITS = "Eur"
START = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp())
PER_USER = 10
"""Elements per ``data`` entry in a kpihub batch (one user's figures of a moment)."""


@dataclass(frozen=True, slots=True)
class Point:
    id: int
    user: int
    kpi: str
    value: str  # two decimals, as vendors send money
    ts: int  # epoch seconds

    @property
    def location(self) -> int:
        return self.user % LOCATIONS


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of ``x`` (cheap, deterministic)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def generate(seed: int, start: int, count: int) -> list[Point]:
    """Points ``start .. start + count - 1`` of the stream ``seed``.

    Groups of ``PER_USER`` consecutive points share a user and a time (one user's
    figures of one moment, as a POS reports them); times advance like a live feed's
    (ten groups per second of feed time, each up to 10 minutes late).
    """
    out = []
    salt = seed << 40
    for n in range(start, start + count):
        group = n // PER_USER
        h = _mix(salt ^ (group << 1))
        cents = _mix(salt ^ (n << 1) ^ 1) % 100_000
        out.append(
            Point(
                id=n,
                user=h % USERS,
                kpi=KPIS[n % len(KPIS)],
                value=f"{cents // 100}.{cents % 100:02d}",
                ts=START + group // 10 - (h >> 32) % 600,
            )
        )
    return out


@functools.lru_cache(maxsize=4096)
def _stamp(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def kpihub_body(points: list[Point]) -> bytes:
    """The points as one article-shaped batch (times as ``"Y-m-d H:i:s"``, values as text).

    Consecutive points of one user share a ``data`` entry. Written out directly rather
    than through ``json.dumps``: every value is plain ASCII with nothing to escape, and
    building millions of bodies must not take longer than sending them.
    """
    entries = []
    i = 0
    while i < len(points):
        j = i
        while j < len(points) and points[j].user == points[i].user:
            j += 1
        first = points[i]
        elements = ",".join(
            f'{{"id":{p.id},"kpi":"{p.kpi}","object_type":"number","value":"{p.value}",'
            f'"units":"{UNITS}","timestamp":"{_stamp(p.ts)}"}}'
            for p in points[i:j]
        )
        entries.append(
            f'{{"user_id":"{first.user}","location_id":"{first.location}","elements":[{elements}]}}'
        )
        i = j
    return (
        f'{{"type":"{TYPE}","version":"1.0.0","context":"{CONTEXT}","data":[{",".join(entries)}]}}'
    ).encode()


def line_protocol(points: list[Point]) -> bytes:
    """The points as InfluxDB line protocol, one point per element (precision=s).

    Tags carry what identifies a series in kpihub (type, context, KPI, user, location);
    fields the value and the element id, as kpihub keeps both.
    """
    return "\n".join(
        f"kpi,type={TYPE},context={CONTEXT},kpi={p.kpi},user_id={p.user},"
        f"location_id={p.location} value={p.value},id={p.id}i {p.ts}"
        for p in points
    ).encode()


def batches(seed: int, start: int, count: int, size: int) -> Iterator[list[Point]]:
    """``count`` consecutive batches of ``size`` points from point ``start`` on."""
    for i in range(count):
        yield generate(seed, start + i * size, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    points = generate(args.seed, 0, args.count)
    print(json.dumps(json.loads(kpihub_body(points)), indent=2))
    print(line_protocol(points).decode())


if __name__ == "__main__":
    main()
