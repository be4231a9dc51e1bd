"""Signing keys added by another node (same store) are picked up on first sight."""

from __future__ import annotations

import time

from kpihub.oauth.jwt import TokenSigner, generate_signing_key
from kpihub.tenancy import audience_for, issuer_for
from tests.functional.harness import Credentials, Harness, example_body


def issue(signer: TokenSigner, harness: Harness, creds: Credentials, now: int) -> str:
    """A ``kpi:write`` token for ``creds`` on tenant acme, signed by ``signer``."""
    settings = harness.services.settings
    token, _ = signer.issue(
        issuer=issuer_for("acme", settings),
        audience=audience_for("acme", settings),
        client_id=creds.client_id,
        environment=creds.environment.value,
        scopes=["kpi:write"],
        ttl=600,
        now=now,
        tenant="acme",
    )
    return token


def test_token_signed_with_a_key_from_another_node_is_accepted(
    harness: Harness, creds: Credentials
) -> None:
    now = int(time.time())
    other_node_key = generate_signing_key(now + 1)
    harness.run(lambda: harness.storage.add_signing_key(other_node_key))
    keys = harness.run(harness.storage.signing_keys)
    other_node = TokenSigner(other_node_key, keys)
    token = issue(other_node, harness, creds, now)
    assert other_node_key.kid not in {k["kid"] for k in harness.services.signer.jwks()["keys"]}

    response = harness.post_kpi(token, example_body())

    assert response.status_code == 200, response.text
    published = harness.http.get("http://acme.localhost/.well-known/jwks.json").json()
    assert other_node_key.kid in {k["kid"] for k in published["keys"]}


def test_a_token_with_an_unknown_key_is_still_refused(harness: Harness, creds: Credentials) -> None:
    stranger = generate_signing_key(int(time.time()))
    token = issue(TokenSigner(stranger, [stranger]), harness, creds, int(time.time()))

    response = harness.post_kpi(token, example_body())

    assert response.status_code == 401
    assert "key this server does not know" in response.json()["message"]
