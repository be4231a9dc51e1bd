"""Token revocation (RFC 7009) and introspection (RFC 7662), over HTTP."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.functional.harness import Credentials, Harness, example_body

REVOKE_URL = "http://acme.localhost/oauth/revoke"
INTROSPECT_URL = "http://acme.localhost/oauth/introspect"


def auth(creds: Credentials) -> dict[str, str]:
    return {"client_id": creds.client_id, "client_secret": creds.client_secret}


def basic(creds: Credentials) -> dict[str, str]:
    raw = f"{creds.client_id}:{creds.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def revoke(harness: Harness, creds: Credentials, token: str) -> httpx.Response:
    response: httpx.Response = harness.http.post(REVOKE_URL, data={"token": token, **auth(creds)})
    return response


def introspect(harness: Harness, creds: Credentials, token: str) -> httpx.Response:
    response: httpx.Response = harness.http.post(
        INTROSPECT_URL, data={"token": token, **auth(creds)}
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response


# -- revocation ------------------------------------------------------------------------


def test_revoke_own_token(harness: Harness, creds: Credentials, token: str) -> None:
    assert harness.post_kpi(token, example_body()).status_code == 200
    response = revoke(harness, creds, token)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert harness.post_kpi(token, example_body()).status_code == 401
    assert introspect(harness, creds, token).json() == {"active": False}
    # Revoking twice is still 200 (RFC 7009 §2.2).
    assert revoke(harness, creds, token).status_code == 200


def test_revoke_with_basic_and_json(harness: Harness, creds: Credentials, token: str) -> None:
    response = harness.http.post(REVOKE_URL, data={"token": token}, headers=basic(creds))
    assert response.status_code == 200, response.text
    assert harness.post_kpi(token, example_body()).status_code == 401
    second = harness.token(creds)
    response = harness.http.post(REVOKE_URL, json={"token": second, **auth(creds)})
    assert response.status_code == 200, response.text
    assert harness.post_kpi(second, example_body()).status_code == 401


def test_revoke_garbage_token_is_200(harness: Harness, creds: Credentials) -> None:
    response = revoke(harness, creds, "garbage")
    assert response.status_code == 200, response.text


def test_revoke_requires_client_auth(harness: Harness, creds: Credentials, token: str) -> None:
    response = harness.http.post(REVOKE_URL, data={"token": token})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.json()["message"]
    wrong = harness.http.post(
        REVOKE_URL,
        data={"token": token, "client_id": creds.client_id, "client_secret": "khs_wrong"},
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    # Nothing was revoked.
    assert harness.post_kpi(token, example_body()).status_code == 200


def test_revoke_without_token_parameter(harness: Harness, creds: Credentials) -> None:
    response = harness.http.post(REVOKE_URL, data=auth(creds))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "token" in response.json()["message"]


def test_client_cannot_revoke_another_clients_token(harness: Harness, token: str) -> None:
    intruder = harness.client()
    assert revoke(harness, intruder, token).status_code == 200  # nothing leaks...
    assert harness.post_kpi(token, example_body()).status_code == 200  # ...nothing happens


# -- introspection -----------------------------------------------------------------------


def test_introspect_own_live_token(harness: Harness, creds: Credentials, token: str) -> None:
    answer = introspect(harness, creds, token).json()
    assert answer["active"] is True
    assert answer["client_id"] == creds.client_id
    assert answer["sub"] == creds.client_id
    assert answer["scope"] == "kpi:write kpi:read"
    assert answer["iss"] == "http://acme.localhost"
    assert answer["aud"] == "http://acme.localhost/api/external"
    assert answer["token_type"] == "Bearer"
    assert answer["env"] == "testing"
    assert answer["exp"] - answer["iat"] == 3600
    assert isinstance(answer["jti"], str)


def test_introspect_with_basic(harness: Harness, creds: Credentials, token: str) -> None:
    response = harness.http.post(INTROSPECT_URL, data={"token": token}, headers=basic(creds))
    assert response.status_code == 200
    assert response.json()["active"] is True


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000])
def test_introspect_garbage_is_inactive(harness: Harness, creds: Credentials, token: str) -> None:
    assert introspect(harness, creds, token).json() == {"active": False}


def test_introspect_another_clients_token_is_inactive(harness: Harness, token: str) -> None:
    other = harness.client()
    assert introspect(harness, other, token).json() == {"active": False}


def test_introspect_another_tenants_token_is_inactive(harness: Harness, creds: Credentials) -> None:
    harness.tenant("other")
    theirs = harness.client("other")
    their_token = harness.token(theirs)
    assert introspect(harness, creds, their_token).json() == {"active": False}


def test_introspect_requires_client_auth(harness: Harness, token: str) -> None:
    response = harness.http.post(INTROSPECT_URL, data={"token": token})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    basic_wrong = harness.http.post(
        INTROSPECT_URL,
        data={"token": token},
        headers={"Authorization": "Basic " + base64.b64encode(b"nobody:wrong").decode()},
    )
    assert basic_wrong.status_code == 401
    assert basic_wrong.headers["WWW-Authenticate"].startswith("Basic ")
