"""Query strings of the read API: defaults, and a 422 naming the parameter for each fault."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from kpihub.domain import Environment, PointKey
from kpihub.errors import ValidationFailed
from kpihub.query.params import (
    encode_cursor,
    parse_leaderboard,
    parse_points,
    parse_series,
)

UTC = ZoneInfo("UTC")
DAY = 86400
T0 = 1_717_200_000  # 2024-06-01 00:00:00 UTC


def points(**params: str | list[str]) -> object:
    multi = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return parse_points(multi, tenant_id=1, environment=Environment.TESTING, zone=UTC)


def series(**params: str | list[str]) -> object:
    multi = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    base = {"kpi": ["points"], "interval": ["day"], "from": [str(T0)], "to": [str(T0 + DAY)]}
    return parse_series(
        {**base, **multi}, tenant_id=1, environment=Environment.TESTING, tenant_zone="UTC"
    )


def leaderboard(**params: str | list[str]) -> object:
    multi = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    base = {"kpi": ["points"], "by": ["user_id"]}
    return parse_leaderboard(
        {**base, **multi}, tenant_id=1, environment=Environment.TESTING, zone=UTC
    )


def refused(call: object, param: str, *allowed: str) -> str:
    """Call ``call()``; assert a 422 for ``param`` whose message names it and ``allowed``."""
    assert callable(call)
    with pytest.raises(ValidationFailed) as caught:
        call()
    errors = caught.value.errors
    assert param in errors, errors
    message = errors[param][0]
    assert param in message and "Allowed" in message, message
    for word in allowed:
        assert word in message, message
    return message


# -- points ----------------------------------------------------------------------------


def test_points_defaults() -> None:
    q = points()
    assert q.limit == 100 and q.descending and q.after is None  # type: ignore[attr-defined]
    flt = q.filter  # type: ignore[attr-defined]
    assert (flt.start, flt.end, flt.overlap, flt.kpis) == (None, None, False, ())


def test_points_filters_and_times() -> None:
    q = points(
        kpi=["a", "b", "a"],
        type="pos",
        context="sales",
        user_id="7",
        location_id="9",
        period="overlap",
        order="asc",
        limit="10000",
        **{"from": "2024-06-01T02:00:00+02:00", "to": str(T0 + 60)},
    )
    flt = q.filter  # type: ignore[attr-defined]
    assert flt.kpis == ("a", "b")
    assert (flt.type, flt.context, flt.user_id, flt.location_id) == ("pos", "sales", "7", "9")
    assert (flt.start, flt.end, flt.overlap) == (T0, T0 + 60, True)
    assert q.limit == 10_000 and not q.descending  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "param", "allowed"),
    [
        ({"period": "week"}, "period", ("timestamp", "overlap")),
        ({"order": "newest"}, "order", ("desc", "asc")),
        ({"limit": "10001"}, "limit", ("1..10000",)),
        ({"limit": "0"}, "limit", ("1..10000",)),
        ({"limit": "ten"}, "limit", ("1..10000",)),
        ({"from": str(T0 + 1), "to": str(T0)}, "from", ("from <= to",)),
        ({"from": "yesterday"}, "from", ("epoch seconds",)),
        ({"to": "1717200000000"}, "to", ("milliseconds",)),
        ({"cursor": "not-a-cursor!"}, "cursor", ("next_cursor",)),
        ({"cursor": "WzEsMl0"}, "cursor", ("next_cursor",)),  # base64url of [1,2]
        ({"user_id": ["1", "2"]}, "user_id", ()),
    ],
)
def test_points_faults_name_the_parameter(
    params: dict[str, str | list[str]], param: str, allowed: tuple[str, ...]
) -> None:
    if param == "user_id":
        with pytest.raises(ValidationFailed) as caught:
            points(**params)
        assert "once" in caught.value.errors["user_id"][0]
        return
    refused(lambda: points(**params), param, *allowed)


def test_a_cursor_round_trips_and_is_bound_to_its_filters() -> None:
    q = points(kpi="points", order="asc")
    key = PointKey(T0, "pos", "sales", "élément/1")
    cursor = encode_cursor(q.fingerprint, key)  # type: ignore[attr-defined]
    again = points(kpi="points", order="asc", cursor=cursor)
    assert again.after == key  # type: ignore[attr-defined]
    # A page size may change between pages; filters and order may not.
    assert points(kpi="points", order="asc", limit="5", cursor=cursor).after == key  # type: ignore[attr-defined]
    refused(lambda: points(kpi="other", order="asc", cursor=cursor), "cursor", "next_cursor")
    refused(lambda: points(kpi="points", cursor=cursor), "cursor", "other filters")


def test_every_fault_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        points(period="x", order="y", limit="0")
    assert set(caught.value.errors) == {"period", "order", "limit"}


# -- series ----------------------------------------------------------------------------


def test_series_defaults_and_snapping() -> None:
    q = series(**{"from": str(T0 + 3600), "to": str(T0 + DAY + 1)})
    assert q.agg == "sum" and q.tz == "UTC" and q.fill and q.group_by is None  # type: ignore[attr-defined]
    assert q.boundaries == (T0, T0 + DAY, T0 + 2 * DAY)  # type: ignore[attr-defined]
    assert (q.filter.start, q.filter.end) == (T0, T0 + 2 * DAY)  # type: ignore[attr-defined]


def test_series_uses_the_tenant_zone_unless_tz_is_given() -> None:
    multi = {"kpi": ["p"], "interval": ["day"], "from": [str(T0)], "to": [str(T0 + 1)]}
    q = parse_series(
        multi, tenant_id=1, environment=Environment.TESTING, tenant_zone="Europe/Copenhagen"
    )
    assert q.tz == "Europe/Copenhagen" and q.boundaries[0] == T0 - 7200
    q = parse_series(
        {**multi, "tz": ["UTC"]},
        tenant_id=1,
        environment=Environment.TESTING,
        tenant_zone="Europe/Copenhagen",
    )
    assert q.tz == "UTC" and q.boundaries[0] == T0


@pytest.mark.parametrize(
    ("params", "param", "allowed"),
    [
        ({"agg": "median"}, "agg", ("sum", "avg", "min", "max", "count", "last")),
        ({"interval": "minute"}, "interval", ("hour", "day", "week", "month")),
        ({"interval": ""}, "interval", ("hour", "day", "week", "month")),
        ({"tz": "Mars/Olympus"}, "tz", ("Europe/Copenhagen",)),
        ({"tz": "../../etc/passwd"}, "tz", ("IANA",)),
        ({"group_by": "type"}, "group_by", ("user_id", "location_id", "kpi")),
        ({"fill": "zero"}, "fill", ("null", "none")),
        ({"period": "overlap"}, "period", ("timestamp",)),
        ({"kpi": ""}, "kpi", ("KPI",)),
        ({"from": ""}, "from", ("epoch seconds",)),
        ({"to": ""}, "to", ("epoch seconds",)),
        ({"from": str(T0 + DAY), "to": str(T0)}, "from", ("from <= to",)),
        ({"from": str(T0), "to": str(T0)}, "to", ("to > from",)),
        ({"interval": "hour", "to": str(T0 + 2501 * 3600)}, "interval", ("2500",)),
        ({"interval": "day", "to": str(T0 + 3000 * DAY)}, "interval", ("2500",)),
    ],
)
def test_series_faults_name_the_parameter(
    params: dict[str, str], param: str, allowed: tuple[str, ...]
) -> None:
    refused(lambda: series(**params), param, *allowed)


def test_series_at_the_bucket_limit_is_accepted() -> None:
    q = series(interval="hour", to=str(T0 + 2500 * 3600))
    assert len(q.boundaries) == 2501  # type: ignore[attr-defined]


# -- leaderboard -----------------------------------------------------------------------


def test_leaderboard_defaults() -> None:
    q = leaderboard()
    assert (q.kpi, q.by, q.agg, q.limit) == ("points", "user_id", "sum", 10)  # type: ignore[attr-defined]
    assert q.filter.kpis == ("points",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "param", "allowed"),
    [
        ({"by": "kpi"}, "by", ("user_id", "location_id")),
        ({"by": ""}, "by", ("user_id", "location_id")),
        ({"kpi": ""}, "kpi", ("KPI",)),
        ({"agg": "p99"}, "agg", ("sum", "last")),
        ({"limit": "1001"}, "limit", ("1..1000",)),
        ({"from": str(T0 + 5), "to": str(T0)}, "from", ("from <= to",)),
    ],
)
def test_leaderboard_faults_name_the_parameter(
    params: dict[str, str], param: str, allowed: tuple[str, ...]
) -> None:
    refused(lambda: leaderboard(**params), param, *allowed)


def test_leaderboard_takes_one_kpi() -> None:
    with pytest.raises(ValidationFailed) as caught:
        leaderboard(kpi=["a", "b"])
    assert "once" in caught.value.errors["kpi"][0]
