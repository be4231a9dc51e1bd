"""GET /api/external/v1/kpi/leaderboard: ranking, ties, aggregates, filters."""

from __future__ import annotations

from tests.functional.harness import Harness
from tests.functional.query_support import element, get, ok, push, unprocessable

T0 = 1_717_200_000
H = 3600


def entries(harness: Harness, token: str, **params: object) -> list[tuple[object, ...]]:
    base: dict[str, object] = {"kpi": "points", "by": "user_id"}
    body = ok(get(harness, token, "/leaderboard", {**base, **params}))
    by = body["by"]
    return [(e["rank"], e[by], e["value"], e["count"]) for e in body["entries"]]


def test_competition_ranking_with_ties(harness: Harness, token: str) -> None:
    push(
        harness,
        token,
        [
            element("1", T0, 10, user_id="b"),
            element("2", T0, 10, user_id="a"),
            element("3", T0, 4, user_id="c"),
            element("4", T0 + H, 6, user_id="c"),
            element("5", T0, 3, user_id="d"),
            element("6", T0, 99, user_id=None, location_id="L1"),  # no user: left out
            element("7", T0, 50, user_id="e", kpi="other"),
        ],
    )
    assert entries(harness, token) == [
        (1, "a", 10.0, 1),
        (1, "b", 10.0, 1),
        (1, "c", 10.0, 2),
        (4, "d", 3.0, 1),
    ]
    body = ok(get(harness, token, "/leaderboard", {"kpi": "points", "by": "user_id"}))
    assert (body["kpi"], body["by"], body["agg"], body["from"], body["to"]) == (
        "points",
        "user_id",
        "sum",
        None,
        None,
    )
    assert entries(harness, token, limit=2) == [(1, "a", 10.0, 1), (1, "b", 10.0, 1)]
    assert entries(harness, token, agg="max") == [
        (1, "a", 10.0, 1),
        (1, "b", 10.0, 1),
        (3, "c", 6.0, 2),
        (4, "d", 3.0, 1),
    ]
    assert entries(harness, token, agg="min") == [
        (1, "a", 10.0, 1),
        (1, "b", 10.0, 1),
        (3, "c", 4.0, 2),
        (4, "d", 3.0, 1),
    ]
    assert entries(harness, token, agg="avg")[2] == (3, "c", 5.0, 2)
    assert entries(harness, token, agg="count") == [
        (1, "c", 2, 2),
        (2, "a", 1, 1),
        (2, "b", 1, 1),
        (2, "d", 1, 1),
    ]
    assert entries(harness, token, agg="last")[2] == (3, "c", 6.0, 2)
    assert entries(harness, token, by="location_id") == [(1, "L1", 99.0, 1)]


def test_range_and_filters(harness: Harness, token: str) -> None:
    push(
        harness,
        token,
        [
            element("1", T0, 1, user_id="a"),
            element("2", T0 + H, 2, user_id="b"),
            element("3", T0 + 2 * H, 3, user_id="a"),
        ],
    )
    push(harness, token, [element("1", T0, 100, user_id="z")], context="hr")
    assert entries(harness, token, **{"from": T0 + H, "to": T0 + 2 * H}) == [(1, "b", 2.0, 1)]
    assert entries(harness, token, context="sales") == [(1, "a", 4.0, 2), (2, "b", 2.0, 1)]
    assert entries(harness, token)[0] == (1, "z", 100.0, 1)
    assert entries(harness, token, type="nope") == []
    # "last" is the latest point; equal timestamps are broken by the greater element id.
    push(harness, token, [element("9", T0 + 2 * H, -5, user_id="a")])
    assert entries(harness, token, agg="last", context="sales")[-1] == (2, "a", -5.0, 3)


def test_faults(harness: Harness, token: str) -> None:
    unprocessable(get(harness, token, "/leaderboard", {"kpi": "points"}), "by")
    unprocessable(get(harness, token, "/leaderboard", {"by": "user_id"}), "kpi")
    unprocessable(get(harness, token, "/leaderboard", {"kpi": "p", "by": "kpi"}), "by")
    unprocessable(
        get(harness, token, "/leaderboard", {"kpi": "p", "by": "user_id", "agg": "median"}), "agg"
    )
    unprocessable(
        get(harness, token, "/leaderboard", {"kpi": "p", "by": "user_id", "limit": 1001}), "limit"
    )
    unprocessable(
        get(harness, token, "/leaderboard", {"kpi": "p", "by": "user_id", "from": 5, "to": 1}),
        "from",
    )
