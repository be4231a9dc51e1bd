"""Bearer authentication (RFC 6750) of ``POST /api/external/v1/kpi``, over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kpihub import admin
from kpihub.domain import Environment
from tests.functional.conftest import app_on
from tests.functional.harness import Credentials, Harness, example_body
from tests.functional.tokens import (
    assert_unauthorized,
    b64url,
    claims_for,
    count_points,
    craft,
    server_private_key,
    signing_key,
)

# -- the happy path and the sanity check of the crafting helpers ------------------------


def test_valid_token_is_accepted(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, example_body())
    assert response.status_code == 200, response.text


def test_crafted_token_with_server_key_is_accepted(harness: Harness, creds: Credentials) -> None:
    # Proves that the rejections below are due to the one thing each changes.
    response = harness.post_kpi(craft(harness, claims_for(creds)), example_body())
    assert response.status_code == 200, response.text


# -- missing and malformed ---------------------------------------------------------------


def test_missing_token(harness: Harness) -> None:
    message = assert_unauthorized(harness.post_kpi(None, example_body()), error=None)
    assert "Authorization: Bearer" in message


def test_garbage_token(harness: Harness) -> None:
    response = harness.post_kpi("not-a-token", example_body())
    message = assert_unauthorized(response)
    assert "JWT" in message
    assert "not-a-token" not in response.headers["WWW-Authenticate"]


def test_other_scheme_is_a_plain_bearer_challenge(harness: Harness, token: str) -> None:
    # RFC 6750 §3.1: no Bearer credentials at all, so no error code in the challenge.
    response = harness.post_kpi(None, example_body(), headers={"Authorization": f"Token {token}"})
    message = assert_unauthorized(response, error=None)
    assert "'Token'" in message and "Bearer" in message


def test_empty_bearer_is_invalid_request(harness: Harness) -> None:
    response = harness.post_kpi(None, example_body(), headers={"Authorization": "Bearer "})
    assert response.status_code == 400, response.text
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="')
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    assert "Bearer <access_token>" in response.json()["message"]


def test_access_token_in_query_string_is_refused(harness: Harness, token: str) -> None:
    response = harness.http.post(
        f"http://acme.localhost/api/external/v1/kpi?access_token={token}",
        json=example_body(),
        headers={"Authorization": f"Bearer {token}"},
    )
    # RFC 6750 §3.1: invalid_request is a 400.
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("Access tokens are not accepted in the query")
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    assert count_points(harness, Environment.TESTING) == 0


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "EdDSA", "typ": "at+jwt", "kid": '\u2603 snow"man'},
        {"alg": "\u00e9\u2603", "typ": "at+jwt", "kid": "k"},
        {"alg": "EdDSA", "typ": "\u2603"},
    ],
)
def test_hostile_header_values_still_get_a_valid_challenge(
    harness: Harness, header: dict[str, str]
) -> None:
    # The description quotes the token's kid/alg/typ; the header must stay sendable
    # and within RFC 6750's character set, not become a 500.
    token = f"{b64url(json.dumps(header).encode())}.{b64url(b'{}')}.c2ln"
    response = harness.post_kpi(token, example_body())
    assert_unauthorized(response)
    challenge = response.headers["WWW-Authenticate"]
    description = challenge.split('error_description="', 1)[1].removesuffix('"')
    assert '"' not in description and "\\" not in description
    assert all(0x20 <= ord(c) < 0x7F for c in challenge)
    assert "\u2603" in response.json()["message"] or "\\u2603" in response.json()["message"]


# -- tokens that are not this tenant's -------------------------------------------------


def test_token_from_another_tenant_is_rejected(harness: Harness) -> None:
    harness.tenant("other")
    harness.integration("other")
    theirs = harness.client("other")
    their_token = harness.token(theirs)
    ok = harness.post_kpi(their_token, example_body(), tenant="other")
    assert ok.status_code == 200, ok.text
    message = assert_unauthorized(harness.post_kpi(their_token, example_body(), tenant="acme"))
    assert "http://other.localhost" in message
    assert count_points(harness, Environment.TESTING, "acme") == 0


def test_alg_none_token_is_rejected(harness: Harness, creds: Credentials) -> None:
    kid = signing_key(harness).kid
    header = b64url(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    payload = b64url(json.dumps(claims_for(creds)).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.c2ln"):
        message = assert_unauthorized(harness.post_kpi(token, example_body()))
        assert "'none'" in message


def test_token_signed_by_another_key_with_real_kid_is_rejected(
    harness: Harness, creds: Credentials
) -> None:
    forged = craft(harness, claims_for(creds), key=Ed25519PrivateKey.generate())
    message = assert_unauthorized(harness.post_kpi(forged, example_body()))
    assert "signature" in message


def test_wrong_audience_is_rejected(harness: Harness, creds: Credentials) -> None:
    token = craft(harness, claims_for(creds, aud="http://acme.localhost/elsewhere"))
    assert "audience" in assert_unauthorized(harness.post_kpi(token, example_body()))


def test_wrong_issuer_is_rejected(harness: Harness, creds: Credentials) -> None:
    token = craft(harness, claims_for(creds, iss="http://evil.localhost"))
    assert "issued by" in assert_unauthorized(harness.post_kpi(token, example_body()))


def test_expired_token_is_rejected(harness: Harness, creds: Credentials) -> None:
    now = int(time.time())
    token = craft(harness, claims_for(creds, iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    assert "expired" in assert_unauthorized(harness.post_kpi(token, example_body()))


def test_wrong_environment_claim_is_rejected(harness: Harness, creds: Credentials) -> None:
    token = craft(harness, claims_for(creds, env="production"))
    assert "environment" in assert_unauthorized(harness.post_kpi(token, example_body()))


def test_wrong_typ_is_rejected(harness: Harness, creds: Credentials) -> None:
    kid, private = server_private_key(harness)
    token = jwt.encode(
        claims_for(creds), private, algorithm="EdDSA", headers={"typ": "JWT", "kid": kid}
    )
    assert "at+jwt" in assert_unauthorized(harness.post_kpi(token, example_body()))


# -- revocation --------------------------------------------------------------------------


def test_revoked_client_token_is_rejected_immediately(
    harness: Harness, creds: Credentials, token: str
) -> None:
    assert harness.post_kpi(token, example_body()).status_code == 200
    harness.run(lambda: admin.revoke_client(harness.storage, creds.client_id))
    assert "revoked" in assert_unauthorized(harness.post_kpi(token, example_body()))


def test_token_revoked_at_revocation_endpoint_is_rejected(
    harness: Harness, creds: Credentials, token: str
) -> None:
    other_token = harness.token(creds)
    assert harness.post_kpi(token, example_body()).status_code == 200
    response = harness.http.post(
        "http://acme.localhost/oauth/revoke",
        data={"token": token, "client_id": creds.client_id, "client_secret": creds.client_secret},
    )
    assert response.status_code == 200, response.text
    assert "revoked" in assert_unauthorized(harness.post_kpi(token, example_body()))
    # Only that token: the client's other tokens keep working.
    assert harness.post_kpi(other_token, example_body()).status_code == 200


# -- scope and environment -----------------------------------------------------------------


def test_read_only_token_is_forbidden(harness: Harness, creds: Credentials) -> None:
    read_only = harness.token(creds, scope="kpi:read")
    response = harness.post_kpi(read_only, example_body())
    assert response.status_code == 403, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="kpi:write"' in challenge
    assert "kpi:write" in response.json()["message"]
    assert count_points(harness, Environment.TESTING) == 0


def test_testing_token_writes_only_testing_data(harness: Harness) -> None:
    testing = harness.client(environment=Environment.TESTING)
    production = harness.client(environment=Environment.PRODUCTION)
    response = harness.post_kpi(harness.token(testing), example_body())
    assert response.status_code == 200, response.text
    assert count_points(harness, Environment.TESTING) == 6
    assert count_points(harness, Environment.PRODUCTION) == 0
    # Same element ids from production are separate rows, created, not updates.
    response = harness.post_kpi(harness.token(production), example_body())
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 6
    assert count_points(harness, Environment.TESTING) == 6
    assert count_points(harness, Environment.PRODUCTION) == 6


# -- failed-authentication throttle ---------------------------------------------------------


@pytest.fixture
def strict(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with app_on(tmp_path, database_url, auth_failure_limit_per_address=3) as h:
        yield h


def test_failed_authentications_are_throttled_per_address(strict: Harness) -> None:
    for _ in range(3):
        assert_unauthorized(strict.post_kpi("guess", example_body()))
    limited = strict.post_kpi("guess", example_body())
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json()["message"]
    # X-Forwarded-For is not trusted by default, so it cannot buy a new budget.
    spoofed = strict.post_kpi("guess", example_body(), headers={"X-Forwarded-For": "10.9.8.7"})
    assert spoofed.status_code == 429
    # Failed client authentication at the token endpoint counts against the same address.
    creds = strict.client()
    wrong = Credentials(creds.tenant, creds.client_id, "khs_wrong", creds.environment)
    assert strict.token_response(wrong).status_code == 429
