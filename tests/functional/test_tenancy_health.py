"""Host → tenant, health endpoints, the OpenAPI document and the shape of API errors."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from tests.functional.conftest import app_on
from tests.functional.harness import Credentials, Harness, example_body


def token_at(harness: Harness, host: str, creds: Credentials, **headers: str) -> httpx.Response:
    response: httpx.Response = harness.http.post(
        f"http://{host}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
        headers=headers,
    )
    return response


# -- host → tenant -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["nobody.localhost", "localhost", "acme.example.com", "a.acme.localhost"]
)
def test_unknown_tenant_host_is_404_json_naming_the_host(
    harness: Harness, creds: Credentials, host: str
) -> None:
    response = token_at(harness, host, creds)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert f"'{host}'" in response.json()["message"]


def test_unknown_tenant_on_the_api_is_404(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, example_body(), tenant="nobody")
    assert response.status_code == 404, response.text
    assert "nobody.localhost" in response.json()["message"]


def test_host_with_port_works(harness: Harness, creds: Credentials) -> None:
    response = token_at(harness, "acme.localhost:8000", creds)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    ingest = harness.http.post(
        "http://acme.localhost:8000/api/external/v1/kpi",
        json=example_body(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert ingest.status_code == 200, ingest.text


def test_host_is_case_insensitive(harness: Harness, creds: Credentials) -> None:
    response = token_at(harness, "ACME.LocalHost", creds)
    assert response.status_code == 200, response.text


def test_forwarded_host_is_ignored_by_default(harness: Harness, creds: Credentials) -> None:
    harness.tenant("other")
    theirs = harness.client("other")
    # The Host says acme: an X-Forwarded-Host naming 'other' must not switch tenants.
    spoofed = token_at(harness, "acme.localhost", theirs, **{"X-Forwarded-Host": "other.localhost"})
    assert spoofed.status_code == 401, spoofed.text
    assert spoofed.json()["error"] == "invalid_client"
    ok = token_at(harness, "acme.localhost", creds, **{"X-Forwarded-Host": "other.localhost"})
    assert ok.status_code == 200
    unknown = token_at(harness, "nobody.localhost", creds, **{"X-Forwarded-Host": "acme.localhost"})
    assert unknown.status_code == 404


@pytest.fixture
def behind_proxy(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with app_on(tmp_path, database_url, trust_forwarded_headers=True) as h:
        yield h


def test_forwarded_host_is_honoured_when_trusted(behind_proxy: Harness) -> None:
    creds = behind_proxy.client()
    # The proxy talks to the app on an internal name; the public host is forwarded.
    response = token_at(
        behind_proxy,
        "10.0.0.5:8000",
        creds,
        **{"X-Forwarded-Host": "acme.localhost", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 200, response.text
    meta = behind_proxy.http.get(
        "http://internal/.well-known/oauth-authorization-server",
        headers={"X-Forwarded-Host": "acme.localhost:443, proxy.internal"},
    )
    assert meta.status_code == 200, meta.text
    assert meta.json()["issuer"] == "http://acme.localhost"
    unknown = behind_proxy.http.get(
        "http://acme.localhost/.well-known/oauth-authorization-server",
        headers={"X-Forwarded-Host": "nobody.localhost"},
    )
    assert unknown.status_code == 404
    assert "nobody.localhost" in unknown.json()["message"]


# -- health ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "acme.localhost", "nobody.localhost"])
def test_health_endpoints_answer_on_any_host(harness: Harness, host: str) -> None:
    healthz = harness.http.get(f"http://{host}/healthz")
    assert healthz.status_code == 200
    assert healthz.json()["status"] == "ok"
    readyz = harness.http.get(f"http://{host}/readyz")
    assert readyz.status_code == 200
    assert readyz.json()["status"] == "ready"


# -- OpenAPI ----------------------------------------------------------------------------


def app_routes(harness: Harness) -> dict[str, set[str]]:
    """The API's routes: every route but the dashboard's pages (``include_in_schema=False``)."""
    routes: dict[str, set[str]] = {}
    for route in harness.http.app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route), route
        if not route.include_in_schema:
            continue
        methods = {m.lower() for m in (route.methods or ())} - {"head"}
        routes.setdefault(route.path, set()).update(methods)
    return routes


def test_openapi_is_valid_and_lists_every_route(harness: Harness) -> None:
    response = harness.http.get("http://localhost/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    assert spec["openapi"].startswith("3.1.")
    validate(spec)
    documented = {
        path: {method for method in operations if method != "parameters"}
        for path, operations in spec["paths"].items()
    }
    assert documented == app_routes(harness)


# -- every API error is JSON with a message naming the problem --------------------------


def _unknown_path(h: Harness, token: str) -> httpx.Response:
    response: httpx.Response = h.http.get("http://acme.localhost/nope")
    return response


def _wrong_method(h: Harness, token: str) -> httpx.Response:
    response: httpx.Response = h.http.delete("http://acme.localhost/api/external/v1/kpi")
    return response


def _unknown_version(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(token, example_body(), version="v9")


def _no_token(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(None, example_body())


def _wrong_media_type(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(token, content=b"type=x", headers={"Content-Type": "text/plain"})


def _malformed_json(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(token, content=b'{"type": "acme-pos",\n  "data": [}')


def _invalid_value(h: Harness, token: str) -> httpx.Response:
    body = example_body()
    body["data"][0]["elements"][0]["value"] = "1,5"
    return h.post_kpi(token, body)


def _unregistered_type(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(token, example_body("unknown-integration"))


def _bad_gzip(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(token, content=b"not gzip", headers={"Content-Encoding": "gzip"})


def _unknown_encoding(h: Harness, token: str) -> httpx.Response:
    return h.post_kpi(token, content=gzip.compress(b"{}"), headers={"Content-Encoding": "br"})


Send = Callable[[Harness, str], httpx.Response]
ERROR_CASES: list[tuple[Send, tuple[int, ...], str]] = [
    (_unknown_path, (404,), "/nope"),
    (_wrong_method, (405,), "DELETE"),
    (_unknown_version, (404,), "v9"),
    (_no_token, (401,), "Authorization"),
    (_wrong_media_type, (415,), "text/plain"),
    (_malformed_json, (400,), "line 2"),
    (_invalid_value, (422,), "'.'"),
    (_unregistered_type, (422,), "unknown-integration"),
    (_bad_gzip, (400,), "gzip"),
    (_unknown_encoding, (415,), "br"),
]


@pytest.mark.parametrize(
    ("send", "statuses", "named"),
    [pytest.param(*case, id=case[0].__name__[1:]) for case in ERROR_CASES],
)
def test_api_errors_are_json_with_a_message(
    harness: Harness, token: str, send: Send, statuses: tuple[int, ...], named: str
) -> None:
    response = send(harness, token)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["message"]
    assert isinstance(message, str)
    assert named in message, message
