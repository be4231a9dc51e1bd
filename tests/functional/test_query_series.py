"""GET /api/external/v1/kpi/series: calendar buckets in a zone, aggregates, groups, limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.functional.harness import Harness
from tests.functional.query_support import element, get, ok, push, unprocessable

CPH = ZoneInfo("Europe/Copenhagen")
H = 3600


def local(*wall: int, zone: ZoneInfo = CPH) -> int:
    return int(datetime(*wall, tzinfo=zone).timestamp())  # type: ignore[arg-type,misc]


def points_series(
    harness: Harness, token: str, tz: str, start: int, end: int, interval: str = "day"
) -> dict[str, Any]:
    """``GET /series`` of KPI ``points`` per ``interval`` in ``tz`` from ``start`` to ``end``."""
    params = {"kpi": "points", "interval": interval, "tz": tz, "from": start, "to": end}
    return ok(get(harness, token, "/series", params))


def test_daily_sums_across_the_spring_change(harness: Harness, token: str) -> None:
    # 2024-03-31 in Copenhagen has 23 hours.
    push(
        harness,
        token,
        [
            element("a", local(2024, 3, 30, 23, 59), 1),
            element("b", local(2024, 3, 31, 0, 0), 2),
            element("c", local(2024, 3, 31, 23, 59), 3),
            element("d", local(2024, 4, 1, 0, 0), 4),
        ],
    )
    body = points_series(
        harness, token, "Europe/Copenhagen", local(2024, 3, 30, 12), local(2024, 4, 1, 1)
    )
    assert body["agg"] == "sum" and body["interval"] == "day"
    assert body["tz"] == "Europe/Copenhagen"
    assert (body["from"], body["to"]) == (local(2024, 3, 30), local(2024, 4, 2))
    (series,) = body["series"]
    assert series["group"] is None
    buckets = series["buckets"]
    assert [(b["start"], b["end"]) for b in buckets] == [
        (local(2024, 3, 30), local(2024, 3, 31)),
        (local(2024, 3, 31), local(2024, 4, 1)),
        (local(2024, 4, 1), local(2024, 4, 2)),
    ]
    assert buckets[1]["end"] - buckets[1]["start"] == 23 * H
    assert [b["value"] for b in buckets] == [1.0, 5.0, 4.0]
    assert [b["count"] for b in buckets] == [1, 2, 1]


def test_the_tenant_zone_is_the_default(harness: Harness) -> None:
    harness.tenant("cph", timezone="Europe/Copenhagen")
    harness.integration("cph", "cph-pos")
    token = harness.token(harness.client("cph"))
    push(harness, token, [element("a", local(2024, 6, 1, 0, 30), 1)], type_="cph-pos", tenant="cph")
    params = {
        "kpi": "points",
        "interval": "day",
        "from": local(2024, 6, 1),
        "to": local(2024, 6, 2),
    }
    body = ok(get(harness, token, "/series", params, tenant="cph"))
    assert body["tz"] == "Europe/Copenhagen"
    assert body["series"][0]["buckets"][0]["value"] == 1.0
    utc = ok(get(harness, token, "/series", {**params, "tz": "UTC"}, tenant="cph"))
    assert [b["value"] for b in utc["series"][0]["buckets"]] == [1.0, None]


def test_aggregates_groups_and_fill(harness: Harness, token: str) -> None:
    t = local(2024, 6, 3, 10)  # a Monday
    push(
        harness,
        token,
        [
            element("1", t, 5, user_id="u2"),
            element("2", t + H, -1, user_id="u1"),
            element("3", t + H, 7, user_id="u1"),  # same time as "2": the greater id is last
            element("4", t + 2 * 86400, 2, user_id="u1", kpi="bonus"),
            element("5", t + 3 * 86400, 4, user_id=None, location_id="L1"),
        ],
    )
    base: dict[str, Any] = {
        "kpi": ["points", "bonus"],
        "interval": "day",
        "tz": "Europe/Copenhagen",
        "from": local(2024, 6, 3),
        "to": local(2024, 6, 7),
    }

    def values(agg: str, **extra: str) -> list[object]:
        body = ok(get(harness, token, "/series", {**base, "agg": agg, **extra}))
        return [[b["value"] for b in s["buckets"]] for s in body["series"]]

    assert values("sum") == [[11.0, None, 2.0, 4.0]]
    assert values("avg") == [[11 / 3, None, 2.0, 4.0]]
    assert values("min") == [[-1.0, None, 2.0, 4.0]]
    assert values("max") == [[7.0, None, 2.0, 4.0]]
    assert values("count") == [[3, None, 1, 1]]
    assert values("last") == [[7.0, None, 2.0, 4.0]]
    assert values("sum", interval="week") == [[17.0]]
    assert values("sum", interval="month") == [[17.0]]

    body = ok(get(harness, token, "/series", {**base, "group_by": "user_id"}))
    assert [s["group"] for s in body["series"]] == [
        {"user_id": "u1"},
        {"user_id": "u2"},
        {"user_id": None},
    ]
    assert [[b["value"] for b in s["buckets"]] for s in body["series"]] == [
        [6.0, None, 2.0, None],
        [5.0, None, None, None],
        [None, None, None, 4.0],
    ]
    body = ok(get(harness, token, "/series", {**base, "group_by": "kpi", "fill": "none"}))
    assert [(s["group"], [b["start"] for b in s["buckets"]]) for s in body["series"]] == [
        ({"kpi": "bonus"}, [local(2024, 6, 5)]),
        ({"kpi": "points"}, [local(2024, 6, 3), local(2024, 6, 6)]),
    ]
    only = ok(get(harness, token, "/series", {**base, "kpi": "bonus", "location_id": "L9"}))
    assert only["series"] == [
        {
            "group": None,
            "buckets": [
                {"start": b, "end": e, "value": None, "count": 0}
                for b, e in zip(
                    [local(2024, 6, d) for d in range(3, 7)],
                    [local(2024, 6, d) for d in range(4, 8)],
                    strict=True,
                )
            ],
        }
    ]


def test_hourly_buckets_on_the_autumn_change(harness: Harness, token: str) -> None:
    # 2024-10-27: 02:00-03:00 happens twice in Copenhagen, as two one-hour buckets.
    first_two = local(2024, 10, 27, 2, 30)  # CEST
    push(harness, token, [element("a", first_two, 1), element("b", first_two + H, 2)])
    body = points_series(
        harness,
        token,
        "Europe/Copenhagen",
        local(2024, 10, 27),
        local(2024, 10, 28),
        interval="hour",
    )
    buckets = body["series"][0]["buckets"]
    assert len(buckets) == 25
    assert [b["value"] for b in buckets[2:4]] == [1.0, 2.0]


def test_kathmandu_quarter_hour_offset(harness: Harness, token: str) -> None:
    ktm = ZoneInfo("Asia/Kathmandu")
    t = local(2024, 6, 1, 0, 0, zone=ktm)  # 18:15 UTC the day before
    push(harness, token, [element("a", t - 1, 1), element("b", t, 2)])
    body = points_series(harness, token, "Asia/Kathmandu", t - 1, t + 1)
    assert [b["value"] for b in body["series"][0]["buckets"]] == [1.0, 2.0]


def test_faults_and_the_bucket_limit(harness: Harness, token: str) -> None:
    base: dict[str, Any] = {
        "kpi": "points",
        "interval": "hour",
        "from": 1_717_200_000,
        "to": 1_717_200_000 + 2500 * H,
    }
    assert len(ok(get(harness, token, "/series", base))["series"][0]["buckets"]) == 2500
    message = unprocessable(
        get(harness, token, "/series", {**base, "to": base["to"] + 1}), "interval"
    )
    assert "2500" in message
    unprocessable(get(harness, token, "/series", {**base, "agg": "median"}), "agg")
    unprocessable(get(harness, token, "/series", {**base, "tz": "Nowhere/City"}), "tz")
    unprocessable(get(harness, token, "/series", {**base, "group_by": "team"}), "group_by")
    unprocessable(get(harness, token, "/series", {**base, "fill": "zero"}), "fill")
    unprocessable(get(harness, token, "/series", {**base, "interval": "minute"}), "interval")
    unprocessable(get(harness, token, "/series", {"interval": "day"}), "kpi")
    unprocessable(get(harness, token, "/series", {"kpi": "points", "interval": "day"}), "from")
    # Groups multiply buckets: the limit is per answer.
    push(harness, token, [element(i, 1_717_200_000, user_id=f"u{i}") for i in range(3)])
    day = {**base, "interval": "day", "to": 1_717_200_000 + 1000 * 86400}
    assert ok(get(harness, token, "/series", day))
    unprocessable(get(harness, token, "/series", {**day, "group_by": "user_id"}), "group_by")
    assert ok(get(harness, token, "/series", {**day, "group_by": "user_id", "fill": "none"}))
