"""Access tokens made by hand, to see which ones the API refuses, and the 401 it answers.

``craft`` signs claims with the server's own signing key (read from the store) unless
given another key, so a test changes exactly one thing about a token the server would
otherwise accept.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kpihub.domain import Environment, SigningKey
from tests.functional.harness import Credentials, Harness

ISSUER = "http://acme.localhost"
AUDIENCE = "http://acme.localhost/api/external"


def assert_unauthorized(response: httpx.Response, error: str | None = "invalid_token") -> str:
    """The 401 challenge; returns the JSON message."""
    assert response.status_code == 401, response.text
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
    message: str = response.json()["message"]
    assert message
    return message


def signing_key(harness: Harness) -> SigningKey:
    keys = harness.run(harness.storage.signing_keys)
    active = [key for key in keys if key.retired_at is None]
    assert len(active) == 1
    return active[0]


def server_private_key(harness: Harness) -> tuple[str, Ed25519PrivateKey]:
    key = signing_key(harness)
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return key.kid, private


def claims_for(creds: Credentials, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": creds.client_id,
        "client_id": creds.client_id,
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "jti": "crafted-" + str(time.monotonic_ns()),
        "scope": "kpi:write kpi:read",
        "env": creds.environment.value,
        "tenant": creds.tenant,
    }
    claims.update(overrides)
    return claims


def craft(harness: Harness, claims: dict[str, Any], key: Ed25519PrivateKey | None = None) -> str:
    """A token signed with the server's own key (or ``key``) under the server's kid."""
    kid, private = server_private_key(harness)
    return jwt.encode(
        claims,
        key or private,
        algorithm="EdDSA",
        headers={"typ": "at+jwt", "kid": kid},
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def count_points(harness: Harness, environment: Environment, tenant: str = "acme") -> int:
    found = harness.run(lambda: harness.storage.get_tenant(tenant))
    assert found is not None
    return harness.run(lambda: harness.storage.count_points(found.id, environment))
