"""GET /api/external/v1/kpi/catalog: every (type, context, kpi) stored, with counts."""

from __future__ import annotations

from kpihub.domain import Environment
from tests.functional.harness import Harness
from tests.functional.query_support import element, get, ok, push

T0 = 1_717_200_000


def test_catalog_lists_what_was_stored(harness: Harness, token: str) -> None:
    assert ok(get(harness, token, "/catalog")) == {"data": []}
    push(
        harness,
        token,
        [
            element("1", T0, user_id="u1", location_id="L1", units="Eur"),
            element("2", T0 + 10, user_id="u2", location_id="L1", units="EUR"),
            element("3", T0 + 5, user_id="u2", location_id=None, units="Eur"),
            element("4", T0 + 7, kpi="bonus", user_id=None, location_id="L2"),
        ],
    )
    push(harness, token, [element("1", T0 - 5, user_id="u9")], context="hr")
    production = harness.token(harness.client(environment=Environment.PRODUCTION))
    push(harness, production, [element("p", T0, kpi="secret")])
    assert ok(get(harness, token, "/catalog"))["data"] == [
        {
            "type": "acme-pos",
            "context": "hr",
            "kpi": "points",
            "units": [],
            "points": 1,
            "first_timestamp": T0 - 5,
            "last_timestamp": T0 - 5,
            "users": 1,
            "locations": 0,
        },
        {
            "type": "acme-pos",
            "context": "sales",
            "kpi": "bonus",
            "units": [],
            "points": 1,
            "first_timestamp": T0 + 7,
            "last_timestamp": T0 + 7,
            "users": 0,
            "locations": 1,
        },
        {
            "type": "acme-pos",
            "context": "sales",
            "kpi": "points",
            "units": ["EUR", "Eur"],
            "points": 3,
            "first_timestamp": T0,
            "last_timestamp": T0 + 10,
            "users": 2,
            "locations": 1,
        },
    ]
    assert [e["kpi"] for e in ok(get(harness, production, "/catalog"))["data"]] == ["secret"]
