"""``POST /oauth/token`` (RFC 6749 client credentials), the JWTs it issues (RFC 9068),
the JWKS and the RFC 8414 metadata, over HTTP against the real app."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from kpihub import admin
from kpihub.domain import Environment
from tests.functional.conftest import app_on
from tests.functional.harness import Credentials, Harness

TOKEN_URL = "http://acme.localhost/oauth/token"
ISSUER = "http://acme.localhost"
AUDIENCE = "http://acme.localhost/api/external"


def basic(client_id: str, client_secret: str, *, encode_all: bool = False) -> str:
    """An RFC 6749 §2.3.1 Basic header; ``encode_all`` percent-encodes every byte."""

    def enc(value: str) -> str:
        if encode_all:
            return "".join(f"%{byte:02X}" for byte in value.encode("utf-8"))
        return value

    raw = f"{enc(client_id)}:{enc(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def form(creds: Credentials, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        **extra,
    }


def post_raw(harness: Harness, content: str, content_type: str, **headers: str) -> httpx.Response:
    response: httpx.Response = harness.http.post(
        TOKEN_URL, content=content.encode(), headers={"Content-Type": content_type, **headers}
    )
    return response


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert body["message"] == body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    return body


def assert_token(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    return body


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- body formats ----------------------------------------------------------------


def test_form_body(harness: Harness, creds: Credentials) -> None:
    body = assert_token(harness.token_response(creds))
    assert body["expires_in"] == 3600


def test_json_body(harness: Harness, creds: Credentials) -> None:
    assert_token(harness.http.post(TOKEN_URL, json=form(creds)))


def test_article_misspelled_content_type_and_grant_type(
    harness: Harness, creds: Credentials
) -> None:
    content = urlencode(
        {
            "grant-type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
    )
    assert_token(post_raw(harness, content, "application/x-www-urlencoded"))


def test_grant_type_alias_in_json(harness: Harness, creds: Credentials) -> None:
    payload = {
        "grant-type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    assert_token(harness.http.post(TOKEN_URL, json=payload))


def test_oversized_body_is_refused_unread(harness: Harness, creds: Credentials) -> None:
    content = urlencode(form(creds)) + "&pad=" + "x" * (1024 * 1024)
    response = post_raw(harness, content, "application/x-www-form-urlencoded")
    assert response.status_code == 413, response.text
    assert "limit" in response.json()["message"]


def test_other_content_type_is_invalid_request(harness: Harness, creds: Credentials) -> None:
    body = assert_oauth_error(
        post_raw(harness, urlencode(form(creds)), "text/plain"), 400, "invalid_request"
    )
    assert "text/plain" in body["message"]


# -- HTTP Basic --------------------------------------------------------------------


def test_http_basic(harness: Harness, creds: Credentials) -> None:
    response = harness.http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(creds.client_id, creds.client_secret)},
    )
    assert_token(response)


def test_http_basic_credentials_are_form_urlencoded(harness: Harness, creds: Credentials) -> None:
    header = basic(creds.client_id, creds.client_secret, encode_all=True)
    response = harness.http.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert_token(response)


def test_basic_and_body_secret_is_invalid_request(harness: Harness, creds: Credentials) -> None:
    response = harness.http.post(
        TOKEN_URL,
        data=form(creds),
        headers={"Authorization": basic(creds.client_id, creds.client_secret)},
    )
    body = assert_oauth_error(response, 400, "invalid_request")
    assert "Basic" in body["message"] and "client_secret" in body["message"]


def test_basic_wrong_secret_challenges_with_basic(harness: Harness, creds: Credentials) -> None:
    response = harness.http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(creds.client_id, "khs_wrong")},
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert 'realm="' in response.headers["WWW-Authenticate"]


def test_client_id_with_a_nul_character_is_an_unknown_client(
    harness: Harness, creds: Credentials
) -> None:
    # PostgreSQL text cannot hold U+0000 (a query with it fails), but no stored
    # client_id has one either: unknown client, as on SQLite, never a 500.
    nul_id = creds.client_id + "\x00"
    in_body = harness.token_response(
        Credentials(creds.tenant, nul_id, creds.client_secret, creds.environment)
    )
    assert_oauth_error(in_body, 401, "invalid_client")
    in_basic = harness.http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(nul_id, creds.client_secret)},
    )
    assert_oauth_error(in_basic, 401, "invalid_client")


def test_body_auth_failure_has_no_basic_challenge(harness: Harness, creds: Credentials) -> None:
    response = harness.token_response(
        Credentials(creds.tenant, creds.client_id, "khs_wrong", creds.environment)
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" not in response.headers


# -- request errors ---------------------------------------------------------------


def test_duplicate_parameter_is_invalid_request(harness: Harness, creds: Credentials) -> None:
    content = urlencode(form(creds)) + "&scope=kpi:write&scope=kpi:read"
    body = assert_oauth_error(
        post_raw(harness, content, "application/x-www-form-urlencoded"), 400, "invalid_request"
    )
    assert "scope" in body["message"]


def test_duplicate_json_key_is_invalid_request(harness: Harness, creds: Credentials) -> None:
    content = json.dumps(form(creds))[:-1] + ', "client_id": "x"}'
    body = assert_oauth_error(
        post_raw(harness, content, "application/json"), 400, "invalid_request"
    )
    assert "client_id" in body["message"]


def test_missing_grant_type_is_invalid_request(harness: Harness, creds: Credentials) -> None:
    payload = form(creds)
    del payload["grant_type"]
    body = assert_oauth_error(harness.http.post(TOKEN_URL, data=payload), 400, "invalid_request")
    assert "grant_type" in body["message"]


def test_other_grant_is_unsupported(harness: Harness, creds: Credentials) -> None:
    response = harness.token_response(creds, grant_type="password")
    body = assert_oauth_error(response, 400, "unsupported_grant_type")
    assert "password" in body["message"] and "client_credentials" in body["message"]


def test_unknown_client_and_wrong_secret_look_the_same(
    harness: Harness, creds: Credentials
) -> None:
    unknown = harness.token_response(
        Credentials(creds.tenant, "kh_test_" + "a" * 24, creds.client_secret, creds.environment)
    )
    wrong = harness.token_response(
        Credentials(creds.tenant, creds.client_id, creds.client_secret + "x", creds.environment)
    )
    assert_oauth_error(unknown, 401, "invalid_client")
    assert_oauth_error(wrong, 401, "invalid_client")
    assert unknown.content == wrong.content


def test_missing_client_credentials_is_invalid_client(harness: Harness) -> None:
    response = harness.http.post(TOKEN_URL, data={"grant_type": "client_credentials"})
    assert_oauth_error(response, 401, "invalid_client")


# -- scopes ------------------------------------------------------------------------


def test_scope_subset_is_granted_and_echoed(harness: Harness, creds: Credentials) -> None:
    body = assert_token(harness.token_response(creds, scope="kpi:read"))
    assert body["scope"] == "kpi:read"
    assert claims_of(body["access_token"])["scope"] == "kpi:read"


def test_scope_not_allowed_is_invalid_scope(harness: Harness) -> None:
    writer = harness.client(scopes=["kpi:write"])
    body = assert_oauth_error(
        harness.token_response(writer, scope="kpi:write kpi:read"), 400, "invalid_scope"
    )
    assert "kpi:read" in body["message"]


def test_unknown_scope_is_invalid_scope(harness: Harness, creds: Credentials) -> None:
    assert_oauth_error(harness.token_response(creds, scope="admin"), 400, "invalid_scope")


def test_default_scopes_are_the_clients_allowed_scopes(harness: Harness) -> None:
    both = harness.client()
    writer = harness.client(scopes=["kpi:write"])
    assert claims_of(harness.token(both))["scope"].split() == ["kpi:write", "kpi:read"]
    body = assert_token(harness.token_response(writer))
    assert body["scope"] == "kpi:write"
    assert claims_of(body["access_token"])["scope"] == "kpi:write"


# -- success shape -----------------------------------------------------------------


def test_success_headers_and_body(harness: Harness, creds: Credentials) -> None:
    response = harness.token_response(creds)
    body = assert_token(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    claims = claims_of(body["access_token"])
    assert claims["exp"] - claims["iat"] == 3600


def test_token_answers_carry_the_token_limit(harness: Harness, creds: Credentials) -> None:
    first = harness.token_response(creds)
    second = harness.token_response(creds)
    assert first.headers["X-RateLimit-Limit"] == "60"
    assert first.headers["X-RateLimit-Remaining"] == "59"
    assert second.headers["X-RateLimit-Remaining"] == "58"
    assert second.headers["RateLimit-Policy"] == '"token-client";q=60;w=60'


def test_per_client_token_ttl(harness: Harness) -> None:
    short = harness.client(token_ttl=120)
    body = assert_token(harness.token_response(short))
    assert body["expires_in"] == 120
    claims = claims_of(body["access_token"])
    assert claims["exp"] - claims["iat"] == 120


# -- which clients may authenticate -------------------------------------------------


def test_client_of_another_tenant_is_invalid_client(harness: Harness) -> None:
    harness.tenant("other")
    theirs = harness.client("other")
    assert_token(harness.token_response(theirs))  # fine at home
    at_acme = Credentials("acme", theirs.client_id, theirs.client_secret, theirs.environment)
    unknown = Credentials("acme", "kh_test_" + "b" * 24, theirs.client_secret, theirs.environment)
    response = harness.token_response(at_acme)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.content == harness.token_response(unknown).content


def test_revoked_client_is_invalid_client(harness: Harness, creds: Credentials) -> None:
    assert_token(harness.token_response(creds))
    harness.run(lambda: admin.revoke_client(harness.storage, creds.client_id))
    assert_oauth_error(harness.token_response(creds), 401, "invalid_client")


def test_secret_rotation(harness: Harness, creds: Credentials) -> None:
    issued = harness.run(
        lambda: admin.rotate_secret(harness.storage, harness.services.server_key, creds.client_id)
    )
    new = Credentials(creds.tenant, creds.client_id, issued.secret, creds.environment)
    assert issued.secret != creds.client_secret
    assert_token(harness.token_response(creds))
    assert_token(harness.token_response(new))
    harness.run(lambda: admin.retire_old_secret(harness.storage, creds.client_id))
    assert_oauth_error(harness.token_response(creds), 401, "invalid_client")
    assert_token(harness.token_response(new))


# -- throttle ----------------------------------------------------------------------


@pytest.fixture
def throttled(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with app_on(tmp_path, database_url, integration=False, token_rate_limit_per_client=3) as h:
        yield h


def test_token_endpoint_throttles_per_client_id(throttled: Harness) -> None:
    first = throttled.client()
    second = throttled.client()
    for _ in range(3):
        assert_token(throttled.token_response(first))
    limited = throttled.token_response(first)
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json()["message"]
    # Another client id has its own budget.
    assert_token(throttled.token_response(second))


# -- RFC 9068 claims, JWKS, metadata -----------------------------------------------


def test_jwt_claims_and_signature_against_published_jwks(
    harness: Harness, creds: Credentials
) -> None:
    body = assert_token(harness.token_response(creds))
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "EdDSA"

    jwks = harness.http.get("http://acme.localhost/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = {key["kid"]: key for key in jwks.json()["keys"]}
    assert header["kid"] in keys
    for key in keys.values():
        assert "d" not in key  # never the private part

    public = jwt.PyJWK.from_dict(keys[header["kid"]])
    claims = jwt.decode(
        token,
        key=public.key,
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "jti", "sub", "client_id", "scope"]},
    )
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == creds.client_id
    assert claims["client_id"] == creds.client_id
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["scope"] == "kpi:write kpi:read"
    assert claims["env"] == "testing"

    again = claims_of(harness.token(creds))
    assert again["jti"] != claims["jti"]


def test_production_client_token_says_production(harness: Harness) -> None:
    live = harness.client(environment=Environment.PRODUCTION)
    assert live.client_id.startswith("kh_live_")
    assert claims_of(harness.token(live))["env"] == "production"


def test_token_issuer_is_the_tenant_url_without_port(harness: Harness, creds: Credentials) -> None:
    response = harness.http.post("http://acme.localhost:8000/oauth/token", data=form(creds))
    assert claims_of(assert_token(response)["access_token"])["iss"] == ISSUER


def test_authorization_server_metadata(harness: Harness) -> None:
    response = harness.http.get("http://acme.localhost/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == ISSUER
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert meta["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert meta["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert set(meta["scopes_supported"]) == {"kpi:write", "kpi:read"}
    # Every advertised endpoint is served by this app.
    paths = {meta[name].removeprefix(ISSUER) for name in ("token_endpoint", "jwks_uri")}
    assert harness.http.get(f"{ISSUER}/.well-known/jwks.json").status_code == 200
    assert paths == {"/oauth/token", "/.well-known/jwks.json"}


def test_metadata_issuer_differs_per_tenant(harness: Harness) -> None:
    harness.tenant("other")
    meta = harness.http.get("http://other.localhost/.well-known/oauth-authorization-server")
    assert meta.json()["issuer"] == "http://other.localhost"
    unknown = harness.http.get("http://nobody.localhost/.well-known/oauth-authorization-server")
    assert unknown.status_code == 404
