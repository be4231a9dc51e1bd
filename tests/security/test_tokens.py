"""Forged and misused access tokens: each is refused with a 401 and stores nothing.

Every forgery starts from a token the server would accept (``craft`` signs with the
server's own key, read from the store) and changes one thing, so a refusal is due to
that one thing. Tokens are built with PyJWT and ``cryptography`` as an attacker would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kpihub import admin
from kpihub.domain import Environment
from kpihub.oauth.jwt import jwk_thumbprint
from tests.functional.harness import Harness, example_body
from tests.functional.query_support import get
from tests.functional.tokens import (
    assert_unauthorized,
    b64url,
    claims_for,
    count_points,
    craft,
    signing_key,
)


def refused(h: Harness, token: str, *, tenant: str = "acme") -> str:
    """Post the article's body with ``token``: a 401 and nothing stored. The message."""
    before = (
        count_points(h, Environment.TESTING, tenant),
        count_points(h, Environment.PRODUCTION, tenant),
    )
    message = assert_unauthorized(h.post_kpi(token, example_body(), tenant=tenant))
    after = (
        count_points(h, Environment.TESTING, tenant),
        count_points(h, Environment.PRODUCTION, tenant),
    )
    assert after == before
    return message


def test_the_forging_helpers_make_a_token_the_server_accepts(shared: Harness) -> None:
    # The control for every test below: unchanged, a crafted token works.
    creds = shared.client()
    response = shared.post_kpi(craft(shared, claims_for(creds)), example_body())
    assert response.status_code == 200, response.text


def test_token_of_tenant_a_is_refused_on_tenant_b(shared: Harness) -> None:
    shared.tenant("tenant-b")
    shared.integration("tenant-b")
    theirs = shared.client("tenant-b")
    their_token = shared.token(theirs)
    assert shared.post_kpi(their_token, example_body(), tenant="tenant-b").status_code == 200
    # On acme, for writing and for reading, whichever identifier the body names.
    assert "http://tenant-b.localhost" in refused(shared, their_token)
    assert_unauthorized(get(shared, their_token))
    # A token that claims acme's issuer for tenant-b's client: its client is not acme's.
    forged = craft(shared, claims_for(theirs, tenant="acme"))
    assert "does not exist on this tenant" in refused(shared, forged)


def test_token_of_testing_cannot_write_or_read_production(shared: Harness) -> None:
    testing = shared.client(environment=Environment.TESTING)
    production = shared.client(environment=Environment.PRODUCTION)
    before = count_points(shared, Environment.PRODUCTION)
    body = example_body()
    body["context"] = "env-isolation"
    response = shared.post_kpi(shared.token(testing), body)
    assert response.status_code == 200, response.text
    # The environment is the client's: nothing in a request can point it elsewhere.
    assert count_points(shared, Environment.PRODUCTION) == before
    # A testing client's token whose claim says production: refused.
    assert "environment" in refused(shared, craft(shared, claims_for(testing, env="production")))
    # Reading: production data stays invisible to the testing token, and vice versa.
    body["data"][0]["elements"][0]["value"] = 987654
    assert shared.post_kpi(shared.token(production), body).status_code == 200
    testing_view = get(shared, shared.token(testing), params={"context": "env-isolation"})
    assert testing_view.status_code == 200, testing_view.text
    assert "987654" not in testing_view.text
    production_view = get(shared, shared.token(production), params={"context": "env-isolation"})
    assert "987654" in production_view.text


def test_alg_none_is_refused(shared: Harness) -> None:
    creds = shared.client()
    kid = signing_key(shared).kid
    claims = claims_for(creds)
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"typ": "at+jwt", "kid": kid})
    assert unsigned.endswith(".")
    payload = unsigned.split(".")[1]
    tokens = [unsigned, unsigned + "c2ln"]
    for alg in ("None", "NONE", "nOnE"):
        header = b64url(json.dumps({"alg": alg, "typ": "at+jwt", "kid": kid}).encode())
        tokens.append(f"{header}.{payload}.")
    for token in tokens:
        assert "only accepts 'EdDSA'" in refused(shared, token)


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    # By hand: PyJWT itself refuses a PEM public key as an HMAC secret, an attacker's
    # code would not.
    header = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def test_hs256_with_the_public_key_as_secret_is_refused(shared: Harness) -> None:
    creds = shared.client()
    jwks = shared.http.get("http://acme.localhost/.well-known/jwks.json").json()
    claims = claims_for(creds)
    for jwk in jwks["keys"]:
        raw = jwt.utils.base64url_decode(jwk["x"])
        public = Ed25519PublicKey.from_public_bytes(raw)
        secrets = [
            raw,
            jwk["x"].encode(),
            json.dumps(jwk).encode(),
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ]
        for secret in secrets:
            assert "only accepts 'EdDSA'" in refused(shared, _hs256(claims, secret, jwk["kid"]))
    # PyJWT's own HS256 with the raw key bytes, for good measure.
    token = jwt.encode(claims, raw, algorithm="HS256", headers={"typ": "at+jwt", "kid": jwk["kid"]})
    refused(shared, token)


def test_expired_token_is_refused(shared: Harness) -> None:
    creds = shared.client()
    now = int(time.time())
    # Beyond the 5 s leeway, and just beyond it.
    for exp in (now - 3600, now - 6):
        token = craft(shared, claims_for(creds, iat=exp - 600, nbf=exp - 600, exp=exp))
        assert "expired" in refused(shared, token)


def test_not_yet_valid_token_is_refused(shared: Harness) -> None:
    creds = shared.client()
    now = int(time.time())
    later = craft(shared, claims_for(creds, nbf=now + 600, exp=now + 1200))
    assert "not valid yet" in refused(shared, later)
    from_the_future = craft(shared, claims_for(creds, iat=now + 600, nbf=now, exp=now + 1200))
    assert "issued in the future" in refused(shared, from_the_future)


def test_wrong_issuer_is_refused(shared: Harness) -> None:
    creds = shared.client()
    for iss in ("http://evil.localhost", "http://acme.localhost.evil.example", "", "acme"):
        assert "issued by" in refused(shared, craft(shared, claims_for(creds, iss=iss)))


def test_wrong_audience_is_refused(shared: Harness) -> None:
    creds = shared.client()
    for aud in ("http://acme.localhost/elsewhere", ["http://other.localhost/api/external"], ""):
        assert "audience" in refused(shared, craft(shared, claims_for(creds, aud=aud)))


def test_wrong_typ_is_refused(shared: Harness) -> None:
    creds = shared.client()
    private = serialization.load_pem_private_key(signing_key(shared).private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    kid = signing_key(shared).kid
    for headers in ({"typ": "JWT", "kid": kid}, {"typ": "id+jwt", "kid": kid}, {"kid": kid}):
        token = jwt.encode(claims_for(creds), private, algorithm="EdDSA", headers=headers)
        assert "not an access token" in refused(shared, token)


def _flip(segment: str, position: int) -> str:
    replacement = "A" if segment[position] != "A" else "B"
    return segment[:position] + replacement + segment[position + 1 :]


def test_tampered_signature_is_refused(shared: Harness) -> None:
    creds = shared.client()
    token = shared.token(creds, scope="kpi:read")
    header, payload, signature = token.split(".")
    # One character inside the signature (not the last one, whose low bits are padding).
    for position in (0, len(signature) // 2, len(signature) - 2):
        assert "signature" in refused(shared, f"{header}.{payload}.{_flip(signature, position)}")
    # The signature kept, the payload raised to kpi:write: it no longer matches.
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["scope"] = "kpi:write kpi:read"
    upgraded = b64url(json.dumps(claims).encode())
    assert "signature" in refused(shared, f"{header}.{upgraded}.{signature}")
    # Signed by another key under the server's kid.
    other = craft(shared, claims_for(creds), key=Ed25519PrivateKey.generate())
    assert "signature" in refused(shared, other)
    # The untouched token still reads: the refusals were the tampering's.
    assert get(shared, token).status_code == 200


def test_unknown_kid_is_refused(shared: Harness) -> None:
    creds = shared.client()
    stranger = Ed25519PrivateKey.generate()
    x = b64url(
        stranger.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    )
    kid = jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": x})
    for header_kid in (kid, "", "../../etc/passwd", "' OR '1'='1"):
        token = jwt.encode(
            claims_for(creds),
            stranger,
            algorithm="EdDSA",
            headers={"typ": "at+jwt", "kid": header_kid},
        )
        assert "does not know" in refused(shared, token)
    # No kid at all.
    token = jwt.encode(claims_for(creds), stranger, algorithm="EdDSA", headers={"typ": "at+jwt"})
    assert "does not know" in refused(shared, token)


def test_revoked_client_is_refused(shared: Harness) -> None:
    creds = shared.client()
    token = shared.token(creds)
    assert get(shared, token).status_code == 200
    shared.run(lambda: admin.revoke_client(shared.storage, creds.client_id))
    assert "revoked" in refused(shared, token)
    assert "revoked" in assert_unauthorized(get(shared, token))
    # And it gets no new token.
    again = shared.token_response(creds)
    assert again.status_code == 401, again.text
    assert again.json()["error"] == "invalid_client"
    assert "access_token" not in again.json()


def _with_query_token(
    h: Harness, method: str, path: str, token: str, header: bool
) -> httpx.Response:
    headers = {"Accept": "application/json"}
    if header:
        headers["Authorization"] = f"Bearer {token}"
    url = f"http://acme.localhost/api/external/v1/kpi{path}"
    response: httpx.Response = h.http.request(
        method,
        url,
        params={"access_token": token},
        json=example_body() if method == "POST" else None,
        headers=headers,
    )
    return response


def test_token_in_the_query_string_is_refused(shared: Harness) -> None:
    token = shared.token(shared.client())
    before = count_points(shared, Environment.TESTING)
    for method, path in (("POST", ""), ("GET", ""), ("GET", "/series"), ("GET", "/catalog")):
        for header in (False, True):
            response = _with_query_token(shared, method, path, token, header)
            # RFC 6750 §2.3 is not offered: a 400 invalid_request, even next to a header.
            assert response.status_code == 400, (method, path, header, response.text)
            assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
            assert "query string" in response.json()["message"]
            assert token not in response.text
    assert count_points(shared, Environment.TESTING) == before


def test_a_forwarded_host_does_not_pick_the_tenant_by_default(shared: Harness) -> None:
    shared.tenant("tenant-x")
    shared.integration("tenant-x")
    theirs = shared.token(shared.client("tenant-x"))
    # Sent to acme's host, claiming to be for tenant-x's: acme answers, and refuses.
    response = shared.post_kpi(
        theirs, example_body(), headers={"X-Forwarded-Host": "tenant-x.localhost"}
    )
    assert "http://tenant-x.localhost" in assert_unauthorized(response)
    # An unknown host is no tenant at all.
    unknown = shared.http.get("http://nobody.localhost/api/external/v1/kpi")
    assert unknown.status_code == 404, unknown.text


def test_the_jwks_publishes_no_private_key_material(shared: Harness) -> None:
    jwks = shared.http.get("http://acme.localhost/.well-known/jwks.json").json()
    assert jwks["keys"]
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}, jwk
        assert jwk["alg"] == "EdDSA" and jwk["use"] == "sig"
