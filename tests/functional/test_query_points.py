"""GET /api/external/v1/kpi: filters, ranges, pagination, CSV, scopes, isolation."""

from __future__ import annotations

import csv
import io

from kpihub.domain import Environment
from tests.functional.harness import Harness
from tests.functional.query_support import element, get, ok, push, unprocessable

T0 = 1_717_200_000  # 2024-06-01 00:00:00 UTC
H = 3600


def ids(body: dict[str, object]) -> list[str]:
    data = body["data"]
    assert isinstance(data, list)
    return [row["id"] for row in data]


def test_a_point_reads_back_with_every_field(harness: Harness, token: str) -> None:
    push(
        harness,
        token,
        [
            element(
                "e1",
                T0,
                12.5,
                user_id="7",
                location_id="9",
                units="Eur",
                date_from=T0 - H,
                date_to=T0,
            )
        ],
    )
    body = ok(get(harness, token))
    assert body == {
        "data": [
            {
                "id": "e1",
                "type": "acme-pos",
                "context": "sales",
                "kpi": "points",
                "object_type": "number",
                "value": 12.5,
                "units": "Eur",
                "user_id": "7",
                "location_id": "9",
                "timestamp": T0,
                "date_from": T0 - H,
                "date_to": T0,
            }
        ],
        "next_cursor": None,
    }


def test_filters_combine(harness: Harness, token: str) -> None:
    push(
        harness,
        token,
        [
            element("a", T0, kpi="sales", user_id="u1", location_id="L1"),
            element("b", T0 + 1, kpi="sales", user_id="u2", location_id="L1"),
            element("c", T0 + 2, kpi="bonus", user_id="u1", location_id="L2"),
            element("d", T0 + 3, kpi="hours", user_id="u1", location_id=None),
        ],
    )
    push(harness, token, [element("a", T0 + 4, kpi="sales", user_id="u3")], context="hr")
    assert ids(ok(get(harness, token))) == ["a", "d", "c", "b", "a"]
    assert ids(ok(get(harness, token, "", {"kpi": "sales"}))) == ["a", "b", "a"]
    assert ids(ok(get(harness, token, "", {"kpi": ["sales", "bonus"], "context": "sales"}))) == [
        "c",
        "b",
        "a",
    ]
    assert ids(ok(get(harness, token, "", {"user_id": "u1"}))) == ["d", "c", "a"]
    assert ids(ok(get(harness, token, "", {"location_id": "L1"}))) == ["b", "a"]
    assert ids(ok(get(harness, token, "", {"location_id": "L1", "kpi": "sales"}))) == ["b", "a"]
    assert ids(ok(get(harness, token, "", {"context": "hr"}))) == ["a"]
    assert ids(ok(get(harness, token, "", {"type": "acme-pos", "kpi": "hours"}))) == ["d"]
    assert ids(ok(get(harness, token, "", {"type": "other"}))) == []
    assert ids(ok(get(harness, token, "", {"kpi": "nothing"}))) == []


def test_the_range_is_half_open_and_takes_rfc3339(harness: Harness, token: str) -> None:
    push(harness, token, [element(i, T0 + i * H) for i in range(5)])
    assert ids(ok(get(harness, token, "", {"from": T0 + H, "to": T0 + 3 * H}))) == ["2", "1"]
    rfc = {"from": "2024-06-01T03:00:00+02:00", "to": "2024-06-01T02:00:00Z"}
    assert ids(ok(get(harness, token, "", rfc))) == ["1"]
    assert ids(ok(get(harness, token, "", {"from": T0 + 4 * H}))) == ["4"]
    assert ids(ok(get(harness, token, "", {"to": T0 + 1}))) == ["0"]
    assert ids(ok(get(harness, token, "", {"from": T0, "to": T0}))) == []


def test_period_overlap_selects_by_date_range(harness: Harness, token: str) -> None:
    push(
        harness,
        token,
        [
            # A month of sales reported at its end.
            element("june", T0 + 30 * 24 * H, date_from=T0, date_to=T0 + 30 * 24 * H - 1),
            element(
                "day",
                T0 + 10 * 24 * H + H,
                date_from=T0 + 10 * 24 * H,
                date_to=T0 + 11 * 24 * H - 1,
            ),
            element("instant", T0 + 20 * 24 * H),
        ],
    )
    week = {"from": T0 + 9 * 24 * H, "to": T0 + 16 * 24 * H}
    assert ids(ok(get(harness, token, "", week))) == ["day"]
    assert ids(ok(get(harness, token, "", {**week, "period": "overlap"}))) == ["june", "day"]
    late = {"from": T0 + 20 * 24 * H, "to": T0 + 20 * 24 * H + 1, "period": "overlap"}
    assert ids(ok(get(harness, token, "", late))) == ["june", "instant"]
    # Half-open: a range ending where a period starts does not overlap it.
    before = {"from": T0 - H, "to": T0, "period": "overlap"}
    assert ids(ok(get(harness, token, "", before))) == []


def test_order_and_pages(harness: Harness, token: str) -> None:
    # Equal timestamps are ordered by element id, so pages cut through them safely.
    push(harness, token, [element(f"e{i:02d}", T0 + (i // 3) * H) for i in range(12)])
    for order, expected in (
        ("desc", [f"e{i:02d}" for i in reversed(range(12))]),
        ("asc", [f"e{i:02d}" for i in range(12)]),
    ):
        seen: list[str] = []
        params: dict[str, str | int] = {"order": order, "limit": 5}
        pages = 0
        while True:
            body = ok(get(harness, token, "", params))
            seen += ids(body)
            pages += 1
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert seen == expected
        assert pages == 3


def test_pagination_under_concurrent_inserts(harness: Harness, token: str) -> None:
    push(harness, token, [element(f"old{i:02d}", T0 + i * H) for i in range(20)])
    first = ok(get(harness, token, "", {"limit": 7}))
    seen = ids(first)
    cursor = first["next_cursor"]
    # New points land between pages: newer than everything, equal to the cursor's
    # timestamp, and older than the rest.
    push(
        harness,
        token,
        [
            element("new-late", T0 + 100 * H),
            element("new-tie", T0 + 13 * H),
            element("new-early", T0 - H),
        ],
    )
    while cursor is not None:
        body = ok(get(harness, token, "", {"limit": 7, "cursor": cursor}))
        seen += ids(body)
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)), "a row was repeated"
    old = [f"old{i:02d}" for i in reversed(range(20))]
    assert [s for s in seen if s.startswith("old")] == old, "an older row was skipped"
    assert "new-late" not in seen  # it sorts before the cursor: the next refresh shows it
    assert "new-early" in seen


def test_limits(harness: Harness, token: str) -> None:
    push(harness, token, [element(i, T0 + i) for i in range(3)])
    assert len(ok(get(harness, token, "", {"limit": 10_000}))["data"]) == 3
    assert len(ok(get(harness, token, "", {"limit": 2}))["data"]) == 2
    message = unprocessable(get(harness, token, "", {"limit": 10_001}), "limit")
    assert "10000" in message


def test_bad_parameters_are_422_naming_them(harness: Harness, token: str) -> None:
    unprocessable(get(harness, token, "", {"period": "month"}), "period")
    unprocessable(get(harness, token, "", {"order": "newest"}), "order")
    unprocessable(get(harness, token, "", {"from": 10, "to": 5}), "from")
    unprocessable(get(harness, token, "", {"cursor": "%%%"}), "cursor")
    push(harness, token, [element(i, T0 + i) for i in range(3)])
    cursor = ok(get(harness, token, "", {"limit": 1}))["next_cursor"]
    message = unprocessable(
        get(harness, token, "", {"limit": 1, "cursor": cursor, "kpi": "x"}), "cursor"
    )
    assert "other filters" in message


def test_csv(harness: Harness, token: str) -> None:
    push(harness, token, [element(i, T0 + i, i + 0.5, units="a,b") for i in range(3)])
    response = get(harness, token, "", {"limit": 2}, headers={"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "id",
        "type",
        "context",
        "kpi",
        "object_type",
        "value",
        "units",
        "user_id",
        "location_id",
        "timestamp",
        "date_from",
        "date_to",
    ]
    assert rows[1][:7] == ["2", "acme-pos", "sales", "points", "number", "2.5", "a,b"]
    assert rows[1][9] == str(T0 + 2) and rows[1][8] == ""
    assert len(rows) == 3
    cursor = response.headers["x-next-cursor"]
    rest = get(harness, token, "", {"limit": 2, "cursor": cursor}, headers={"Accept": "text/csv"})
    assert [r[0] for r in csv.reader(io.StringIO(rest.text))] == ["id", "0"]
    assert "x-next-cursor" not in rest.headers
    # JSON stays the default, and wins when preferred.
    mixed = {"Accept": "text/csv;q=0.5, application/json"}
    assert (
        get(harness, token, "", headers=mixed)
        .headers["content-type"]
        .startswith("application/json")
    )


def test_reading_needs_the_read_scope(harness: Harness) -> None:
    writer = harness.token(harness.client(scopes=["kpi:write"]))
    response = get(harness, writer)
    assert response.status_code == 403, response.text
    assert "kpi:read" in response.json()["message"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    for path in ("/series", "/leaderboard", "/catalog"):
        assert get(harness, writer, path).status_code == 403
    reader = harness.token(harness.client(scopes=["kpi:read"]))
    assert get(harness, reader).status_code == 200
    assert get(harness, None).status_code == 401


def test_rate_limit_headers_and_unknown_version(harness: Harness, token: str) -> None:
    response = get(harness, token)
    assert response.headers["x-ratelimit-limit"] == "180"
    assert response.headers["x-ratelimit-remaining"] == "179"
    unknown = get(harness, token, version="v9")
    assert unknown.status_code == 404 and "v1" in unknown.json()["message"]


def test_environments_do_not_mix(harness: Harness, token: str) -> None:
    production = harness.token(harness.client(environment=Environment.PRODUCTION))
    push(harness, token, [element("testing-only", T0)])
    push(harness, production, [element("production-only", T0)])
    assert ids(ok(get(harness, token))) == ["testing-only"]
    assert ids(ok(get(harness, production))) == ["production-only"]


def test_tenants_do_not_mix(harness: Harness, token: str) -> None:
    harness.tenant("other")
    harness.integration("other", "other-pos")
    theirs = harness.token(harness.client("other"))
    push(harness, token, [element("ours", T0)])
    push(harness, theirs, [element("theirs", T0)], type_="other-pos", tenant="other")
    assert ids(ok(get(harness, token))) == ["ours"]
    assert ids(ok(get(harness, theirs, tenant="other"))) == ["theirs"]
    assert get(harness, token, tenant="other").status_code == 401
