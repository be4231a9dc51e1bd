"""SQL injection: classic payloads in every filter of the query API and the dashboard.

One app per backend for the module, holding data of the attacker's own tenant (both
environments) and of a victim tenant. Each payload must give a 200 or a 422, nothing
of the victim's or of the other environment, and leave every table as it was: values
are always bound, never spliced into SQL, and names (aggregates, group_by) come from
fixed lists.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kpihub.domain import Environment, PointKey
from kpihub.query.params import encode_cursor
from kpihub.storage.urls import scheme
from tests.functional.conftest import make_settings
from tests.functional.harness import Harness, open_harness
from tests.functional.query_support import element, get, push
from tests.functional.web_support import add_user, page_csrf, sign_in

ACME = "http://acme.localhost"
DAY = 86_400
T0 = 1_727_740_800  # 2024-10-01T00:00:00Z
PAYLOADS = (
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    "') OR ('a'='a",
    "1 OR 1=1",
    "'; DROP TABLE data_points; --",
    "1; DELETE FROM data_points",
    "' UNION SELECT type, context, element_id, kpi, user_id, location_id FROM data_points --",
    "%' OR '%'='",
    "\\'; SELECT pg_sleep(5); --",
    "' AND 1=CAST((SELECT version()) AS int) --",
    "admin'--",
    "*/ OR /*",
    "user_id",
    "tenant_id = tenant_id",
    "sum(value)) FROM data_points --",
)
# What the attacker must never see: the victim tenant's data, and the attacker's own
# production data (the token is a testing one).
VICTIM = ("victim-user", "victim-location", "victim-kpi", "victim-context", "4242.4242")
OWN_PRODUCTION = ("prod-user", "7777.7777")
FORBIDDEN = (*VICTIM, *OWN_PRODUCTION)
# Each endpoint's valid base query and the parameters it reads.
FILTERS = ("type", "context", "kpi", "user_id", "location_id", "from", "to", "period")
ENDPOINTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "": ({}, (*FILTERS, "limit", "order", "cursor")),
    "/series": (
        {"kpi": "points", "interval": "day", "from": T0, "to": T0 + 7 * DAY},
        (*FILTERS, "agg", "interval", "tz", "group_by", "fill"),
    ),
    "/leaderboard": (
        {"kpi": "points", "by": "user_id"},
        (*FILTERS, "agg", "by", "limit"),
    ),
    "/catalog": ({}, FILTERS),
}
CASES = [(path, name) for path, (_, names) in ENDPOINTS.items() for name in names]


@dataclass
class World:
    h: Harness
    token: str

    def snapshot(self) -> list[Any]:
        """Every table, and every row of the ones an injection would go for."""
        if scheme(self.h.database_url) == "sqlite":
            tables = self.h.rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
        else:
            tables = self.h.rows(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY 1"
            )
        return [
            tables,
            self.h.rows(
                "SELECT tenant_id, environment, type, context, element_id, kpi, value, user_id, "
                "location_id, ts FROM data_points ORDER BY tenant_id, environment, element_id"
            ),
            self.h.rows("SELECT id, name FROM tenants ORDER BY id"),
            self.h.rows("SELECT client_id, secret_hash, revoked_at FROM clients ORDER BY 1"),
            self.h.rows("SELECT email, password_hash, role FROM dashboard_users ORDER BY 1"),
        ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Iterator[World]:
    settings = make_settings(
        tmp_path_factory.mktemp("injection"),
        database_url=module_database_url,
        rate_limit=1_000_000,
        auth_failure_limit_per_address=1_000_000,
        dashboard_login_limit_per_address=1_000_000,
    )
    with open_harness(settings) as h:
        h.tenant("victim")
        h.integration("victim", "victim-pos")
        victim = h.token(h.client("victim"))
        push(
            h,
            victim,
            [
                element(f"v{i}", T0 + i * 3600, 4242.4242, kpi="victim-kpi", user_id="victim-user")
                for i in range(5)
            ]
            + [element("vl", T0, 4242.4242, kpi="victim-kpi", location_id="victim-location")],
            context="victim-context",
            type_="victim-pos",
            tenant="victim",
        )
        production = h.token(h.client(environment=Environment.PRODUCTION))
        push(h, production, [element("p1", T0, 7777.7777, user_id="prod-user")])
        token = h.token(h.client())
        own = [element(f"a{i}", T0 + i * 3600, 1.0 + i, user_id=f"u{i % 3}") for i in range(30)]
        # A user id that is itself a payload: a filter on it must find exactly this point.
        own.append(element("literal", T0, 5.0, user_id=PAYLOADS[0], location_id=PAYLOADS[5]))
        push(h, token, own)
        add_user(h, "ada@example.com")
        sign_in(h, "ada@example.com")
        switch = page_csrf(h)
        h.http.post(f"{ACME}/environment", data={"csrf_token": switch, "environment": "testing"})
        yield World(h, token)


@pytest.fixture
def intact(world: World) -> Iterator[World]:
    """The world, checked afterwards to be exactly as before (no table dropped or changed)."""
    before = world.snapshot()
    yield world
    assert world.snapshot() == before


def _assert_harmless(response: httpx.Response, what: object) -> None:
    assert response.status_code in (200, 422), (what, response.status_code, response.text)
    for marker in FORBIDDEN:
        assert marker not in response.text, (what, marker, response.text[:500])
    if response.status_code == 200 and isinstance(response.json().get("data"), list):
        for point in response.json()["data"]:
            assert point["type"] == "acme-pos", (what, point)


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{p or '/'}:{n}" for p, n in CASES])
def test_query_parameter_is_not_injectable(intact: World, path: str, name: str) -> None:
    base, _ = ENDPOINTS[path]
    for payload in PAYLOADS:
        for value in ([payload], ["points", payload] if name == "kpi" else [payload, payload]):
            response = get(intact.h, intact.token, path, {**base, name: value})
            _assert_harmless(response, (path, name, value))


def test_a_payload_is_matched_as_plain_text(intact: World) -> None:
    for name, value in (("user_id", PAYLOADS[0]), ("location_id", PAYLOADS[5])):
        response = get(intact.h, intact.token, params={name: value})
        assert response.status_code == 200, response.text
        assert [p["id"] for p in response.json()["data"]] == ["literal"], name


def test_a_forged_cursor_is_not_injectable(intact: World) -> None:
    first = get(intact.h, intact.token, params={"limit": 1})
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    _, fingerprint, ts, type_, context, element_id = json.loads(raw)
    for payload in PAYLOADS:
        for key in (
            PointKey(ts, payload, context, element_id),
            PointKey(ts, type_, payload, element_id),
            PointKey(ts, type_, context, payload),
        ):
            forged = encode_cursor(fingerprint, key)
            response = get(intact.h, intact.token, params={"limit": 100, "cursor": forged})
            _assert_harmless(response, key)


EXPLORER = ("view", "context", "kpi", "user_id", "location_id", "range", "from", "to")
EXPLORER_ALL = (*EXPLORER, "agg", "chart", "by")


@pytest.mark.parametrize("page", ["/explorer", "/explorer.csv", "/debugger"])
def test_dashboard_filter_is_not_injectable(intact: World, page: str) -> None:
    names = ("status", "before") if page == "/debugger" else EXPLORER_ALL
    for name in names:
        for payload in PAYLOADS:
            params = {name: payload}
            if page != "/debugger" and name != "range":
                params["range"] = "custom" if name in ("from", "to") else "30d"
            response = intact.h.http.get(f"{ACME}{page}", params=params, follow_redirects=False)
            assert response.status_code == 200, (page, name, payload, response.text[:300])
            for marker in FORBIDDEN:
                assert marker not in response.text, (page, name, payload, marker)


def test_dashboard_forms_store_a_payload_as_plain_text(world: World) -> None:
    h = world.h
    # Sign-in: an injected email is one more unknown email (each costs an argon2
    # verification, so a few of the payloads are enough).
    h.http.cookies.clear()
    for payload in PAYLOADS[:6]:
        form = h.http.get(f"{ACME}/login")
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = h.http.post(
            f"{ACME}/login",
            data={"csrf_token": token, "email": payload, "password": payload},
            follow_redirects=False,
        )
        assert response.status_code == 401, (payload, response.text[:300])
    sign_in(h, "ada@example.com")
    tables_before = world.snapshot()[0]
    made = h.http.post(
        f"{ACME}/credentials/clients",
        data={
            "name": PAYLOADS[5],
            "environment": "testing",
            "csrf_token": page_csrf(h, "/credentials"),
        },
    )
    assert made.status_code == 200, made.text
    assert h.rows("SELECT name FROM clients WHERE name = ?", PAYLOADS[5]) == [(PAYLOADS[5],)]
    assert world.snapshot()[0] == tables_before
    assert h.scalar("SELECT COUNT(*) FROM data_points WHERE type = 'victim-pos'") == 6
