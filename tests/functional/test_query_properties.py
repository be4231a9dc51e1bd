"""Series and leaderboards agree with a plain-Python computation over the same points.

Hypothesis draws points (a few users, locations, KPIs and contexts; timestamps over
three months around the spring DST changes of several zones; values with negatives
and ties) and a handful of queries. The points go in through the API, into a tenant
of their own per example; the answers are compared with what is computed here
directly from the points, with ``zoneinfo`` wall clocks, not with kpihub's code.
One app per backend serves the whole module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.calendar import calendar_unit
from tests.functional.conftest import make_settings
from tests.functional.harness import Harness, open_harness
from tests.functional.query_support import element, get, ok, push

START = int(datetime(2024, 2, 20, tzinfo=UTC).timestamp())
END = int(datetime(2024, 5, 20, tzinfo=UTC).timestamp())
# Instants around DST changes in the zones queried (and one second either side).
CHANGES = [
    int(datetime(*wall, tzinfo=UTC).timestamp()) + delta
    for wall in [(2024, 3, 10, 7), (2024, 3, 31, 1), (2024, 4, 6, 15), (2024, 3, 30, 23)]
    for delta in (-1, 0, 1)
]
ZONES = ["UTC", "Europe/Copenhagen", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
USERS = ["u1", "u2", "u10", None]
LOCATIONS = ["L1", "L2", None]
KPIS = ["points", "sales", "bonus"]
CONTEXTS = ["sales", "hr"]
AGGS = ["sum", "avg", "min", "max", "count", "last"]
_tenants = itertools.count(1)


@dataclass(frozen=True)
class Point:
    id: str
    context: str
    kpi: str
    user_id: str | None
    location_id: str | None
    ts: int
    value: float


@st.composite
def points(draw: st.DrawFn) -> list[Point]:
    count = draw(st.integers(min_value=1, max_value=60))
    out = []
    for n in range(count):
        user = draw(st.sampled_from(USERS))
        location = draw(st.sampled_from(LOCATIONS if user else LOCATIONS[:-1]))
        ts = draw(
            st.one_of(
                st.integers(min_value=START, max_value=END),
                st.sampled_from(CHANGES),
                st.sampled_from([START + 86400 * 40, START + 86400 * 40 + 3600]),  # ties
            )
        )
        out.append(
            Point(
                id=str(n),  # string order: "10" < "9", as the "last" rule says
                context=draw(st.sampled_from(CONTEXTS)),
                kpi=draw(st.sampled_from(KPIS)),
                user_id=user,
                location_id=location,
                ts=ts,
                value=draw(st.integers(min_value=-20, max_value=20)) / 2,
            )
        )
    return out


@pytest.fixture(scope="module")
def app(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    settings_ = make_settings(tmp_path_factory.mktemp("props"), database_url=module_database_url)
    with open_harness(settings_, tenant=False) as h:
        yield h


def load(h: Harness, data: list[Point]) -> tuple[str, str]:
    """A fresh tenant holding ``data``; its name and a token."""
    tenant = f"prop{next(_tenants)}"
    h.tenant(tenant)
    h.integration(tenant, f"{tenant}-pos")
    token = h.token(h.client(tenant))
    for context in CONTEXTS:
        elements = [
            element(p.id, p.ts, p.value, kpi=p.kpi, user_id=p.user_id, location_id=p.location_id)
            for p in data
            if p.context == context
        ]
        if elements:
            push(h, token, elements, context=context, type_=f"{tenant}-pos", tenant=tenant)
    return tenant, token


# -- the plain computation -------------------------------------------------------------


def aggregate(agg: str, ps: list[Point]) -> float | int:
    values = [p.value for p in ps]
    if agg == "sum":
        return sum(values)
    if agg == "avg":
        return sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "count":
        return len(values)
    return max(ps, key=lambda p: (p.ts, p.id)).value  # last: latest, then greatest id


def check_series(answer: dict[str, Any], data: list[Point], q: dict[str, Any]) -> None:
    zone = ZoneInfo(q["tz"])
    interval, start, end = q["interval"], q["from"], q["to"]
    first, last = calendar_unit(start, interval, zone), calendar_unit(end - 1, interval, zone)

    def selected(p: Point) -> bool:
        in_range = start <= p.ts < end or calendar_unit(p.ts, interval, zone) in (first, last)
        return in_range and p.kpi in q["kpi"]

    expected: dict[Any, dict[Any, list[Point]]] = {}
    for p in filter(selected, data):
        group = getattr(p, q["group_by"]) if q.get("group_by") else None
        expected.setdefault(group, {}).setdefault(calendar_unit(p.ts, interval, zone), []).append(p)

    got_groups = [s["group"] for s in answer["series"]]
    if q.get("group_by"):
        assert got_groups == [
            {q["group_by"]: g} for g in sorted(expected, key=lambda g: (g is None, g or ""))
        ]
    else:
        assert got_groups == [None]
        expected.setdefault(None, {})
    for s in answer["series"]:
        group = s["group"][q["group_by"]] if s["group"] else None
        want = expected[group]
        buckets = s["buckets"]
        for b in buckets:  # each bucket is exactly one calendar unit
            key = calendar_unit(b["start"], interval, zone)
            assert calendar_unit(b["end"] - 1, interval, zone) == key
            assert calendar_unit(b["start"] - 1, interval, zone) != key
            assert calendar_unit(b["end"], interval, zone) != key
        if q.get("fill") != "none":  # contiguous, and covering the range
            assert buckets[0]["start"] <= start and buckets[-1]["end"] >= end
            assert buckets[0]["start"] == answer["from"] and buckets[-1]["end"] == answer["to"]
            assert all(a["end"] == b["start"] for a, b in itertools.pairwise(buckets))
        got = {calendar_unit(b["start"], interval, zone): b for b in buckets if b["count"]}
        assert set(got) == set(want)
        for key, ps in want.items():
            assert got[key]["count"] == len(ps)
            assert got[key]["value"] == aggregate(q["agg"], ps), (key, ps)
        for b in buckets:
            if not b["count"]:
                assert b["value"] is None


def expected_leaderboard(data: list[Point], q: dict[str, Any]) -> list[tuple[Any, ...]]:
    by: str = q["by"]
    groups: dict[str, list[Point]] = {}
    for p in data:
        owner = getattr(p, by)
        if p.kpi != q["kpi"] or owner is None:
            continue
        if ("from" in q and p.ts < q["from"]) or ("to" in q and p.ts >= q["to"]):
            continue
        groups.setdefault(owner, []).append(p)
    scored = sorted(
        ((aggregate(q["agg"], ps), owner, len(ps)) for owner, ps in groups.items()),
        key=lambda e: (-e[0], e[1]),
    )
    values = [v for v, _, _ in scored]
    return [
        (1 + sum(1 for other in values if other > v), owner, v, n)
        for v, owner, n in scored[: q["limit"]]
    ]


# -- the property ----------------------------------------------------------------------

series_queries = st.fixed_dictionaries(
    {
        "kpi": st.lists(st.sampled_from(KPIS), min_size=1, max_size=3, unique=True),
        "agg": st.sampled_from(AGGS),
        "interval": st.sampled_from(["hour", "day", "week", "month"]),
        "tz": st.sampled_from(ZONES),
        "from": st.integers(min_value=START - 86400, max_value=END),
        "span": st.integers(min_value=1, max_value=95 * 86400),
    },
    optional={
        "group_by": st.sampled_from(["user_id", "location_id", "kpi"]),
        "fill": st.sampled_from(["null", "none"]),
    },
)
leaderboard_queries = st.fixed_dictionaries(
    {
        "kpi": st.sampled_from(KPIS),
        "by": st.sampled_from(["user_id", "location_id"]),
        "agg": st.sampled_from(AGGS),
        "limit": st.integers(min_value=1, max_value=5),
    },
    optional={
        "from": st.integers(min_value=START, max_value=END),
        "to": st.integers(min_value=END - 40 * 86400, max_value=END + 1),
    },
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=points(),
    series=st.lists(series_queries, min_size=1, max_size=6),
    boards=st.lists(leaderboard_queries, min_size=1, max_size=4),
)
def test_answers_match_a_plain_computation(
    app: Harness,
    data: list[Point],
    series: list[dict[str, Any]],
    boards: list[dict[str, Any]],
) -> None:
    tenant, token = load(app, data)
    for q in series:
        span = q.pop("span")
        if q["interval"] == "hour":  # within 2,500 buckets per answer, up to 4 groups
            span = min(span, (600 if "group_by" in q else 2000) * 3600)
        q["to"] = q["from"] + span
        answer = ok(get(app, token, "/series", q, tenant=tenant))
        check_series(answer, data, q)
    for q in boards:
        if "from" in q and "to" in q and q["to"] < q["from"]:
            q["from"], q["to"] = q["to"], q["from"]
        answer = ok(get(app, token, "/leaderboard", q, tenant=tenant))
        got = [(e["rank"], e[q["by"]], e["value"], e["count"]) for e in answer["entries"]]
        assert got == expected_leaderboard(data, q), q
