from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from kpihub.domain import SigningKey
from kpihub.errors import InvalidToken
from kpihub.oauth.jwt import TokenSigner, generate_signing_key, jwk_thumbprint

NOW = 1_700_000_000
ISS = "https://acme.localhost"
AUD = "https://acme.localhost/api/external"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jsonb64(value: object) -> str:
    return b64(json.dumps(value).encode())


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key(NOW)


@pytest.fixture(scope="module")
def signer(key: SigningKey) -> TokenSigner:
    return TokenSigner(key, [key])


def issue(signer: TokenSigner, **overrides: Any) -> tuple[str, dict[str, Any]]:
    arguments: dict[str, Any] = {
        "issuer": ISS,
        "audience": AUD,
        "client_id": "kh_test_abc",
        "environment": "testing",
        "scopes": ["kpi:write", "kpi:read"],
        "ttl": 3600,
        "now": NOW,
        "tenant": "acme",
    }
    arguments.update(overrides)
    return signer.issue(**arguments)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "c",
        "client_id": "c",
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "j",
        "scope": "kpi:write",
        "env": "testing",
        "tenant": "acme",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    return pyjwt.encode(payload, private, algorithm="EdDSA", headers=headers)


def rejected(signer: TokenSigner, token: str, words: str, *, now: int = NOW) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        signer.verify(token, issuer=ISS, audience=AUD, now=now)
    error = info.value
    assert error.error == "invalid_token"
    assert words in error.description, error.description
    assert token not in error.description
    return error


# --- keys -------------------------------------------------------------------


def test_generate_signing_key(key: SigningKey) -> None:
    jwk = key.public_jwk
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA" and jwk["use"] == "sig"
    assert jwk["kid"] == key.kid
    assert len(base64.urlsafe_b64decode(jwk["x"] + "=")) == 32
    assert key.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key.created_at == NOW and key.retired_at is None
    assert generate_signing_key(NOW).kid != key.kid


def test_kid_is_rfc7638_thumbprint(key: SigningKey) -> None:
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + key.public_jwk["x"] + '"}'
    assert key.kid == b64(hashlib.sha256(canonical.encode()).digest())


def test_rfc8037_thumbprint_example() -> None:
    # RFC 8037 Appendix A.3.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_jwks_lists_every_verifiable_key(key: SigningKey) -> None:
    old = generate_signing_key(NOW - 86400)
    signer = TokenSigner(key, [old])
    assert signer.kid == key.kid
    assert sorted(k["kid"] for k in signer.jwks()["keys"]) == sorted([key.kid, old.kid])
    assert all("d" not in k for k in signer.jwks()["keys"])


# --- issue and verify ------------------------------------------------------


def test_issue_header_and_claims(signer: TokenSigner, key: SigningKey) -> None:
    token, issued = issue(signer)
    header = pyjwt.get_unverified_header(token)
    assert header == {"typ": "at+jwt", "alg": "EdDSA", "kid": key.kid}
    assert issued["iss"] == ISS and issued["aud"] == AUD
    assert issued["sub"] == issued["client_id"] == "kh_test_abc"
    assert issued["iat"] == issued["nbf"] == NOW and issued["exp"] == NOW + 3600
    assert issued["scope"] == "kpi:write kpi:read"
    assert issued["env"] == "testing" and issued["tenant"] == "acme"
    assert len(base64.urlsafe_b64decode(issued["jti"] + "==")) == 16
    assert issue(signer)[1]["jti"] != issued["jti"]


def test_verify_round_trip(signer: TokenSigner) -> None:
    token, issued = issue(signer)
    assert signer.verify(token, issuer=ISS, audience=AUD, now=NOW + 10) == issued
    # Second call is served from the verified-token cache and must agree.
    assert signer.verify(token, issuer=ISS, audience=AUD, now=NOW + 10) == issued


def test_returned_claims_cannot_poison_the_cache(signer: TokenSigner) -> None:
    token, _ = issue(signer)
    signer.verify(token, issuer=ISS, audience=AUD, now=NOW)["exp"] = NOW + 10**9
    rejected(signer, token, "expired", now=NOW + 7200)


def test_verify_uses_wall_clock_by_default(signer: TokenSigner) -> None:
    token, _ = issue(signer)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, issuer=ISS, audience=AUD)  # NOW is long past


def test_application_at_jwt_typ_accepted(signer: TokenSigner, key: SigningKey) -> None:
    token = sign(key, claims(), typ="Application/AT+JWT")
    assert signer.verify(token, issuer=ISS, audience=AUD, now=NOW)["sub"] == "c"


def test_audience_list(signer: TokenSigner, key: SigningKey) -> None:
    token = sign(key, claims(aud=["other", AUD]))
    assert signer.verify(token, issuer=ISS, audience=AUD, now=NOW)["sub"] == "c"


def test_rotation_old_key_still_verifies(key: SigningKey) -> None:
    old = generate_signing_key(NOW - 86400)
    old_token, _ = issue(TokenSigner(old, [old]))
    rotated = TokenSigner(key, [old])
    assert rotated.verify(old_token, issuer=ISS, audience=AUD, now=NOW)["sub"] == "kh_test_abc"
    new_token, _ = issue(rotated)
    assert pyjwt.get_unverified_header(new_token)["kid"] == key.kid
    retired = TokenSigner(key, [])
    rejected(retired, old_token, "does not know")


def test_leeway(signer: TokenSigner) -> None:
    token, _ = issue(signer, ttl=60)
    assert signer.verify(token, issuer=ISS, audience=AUD, now=NOW + 64)
    rejected(signer, token, "expired", now=NOW + 65)
    with pytest.raises(InvalidToken):
        signer.verify(token, issuer=ISS, audience=AUD, now=NOW + 61, leeway=0)


# --- rejections -------------------------------------------------------------


def test_not_a_jwt(signer: TokenSigner) -> None:
    rejected(signer, "abc", "not a JWT")
    rejected(signer, "a.b.c.d", "not a JWT")
    rejected(signer, "!!!.e30.", "not a JWT")
    rejected(signer, jsonb64([1]) + ".e30.", "not a JWT")
    rejected(signer, "\u00e9.e30.", "not a JWT")
    rejected(signer, "x" * 5000, "longer than")


def test_alg_none(signer: TokenSigner, key: SigningKey) -> None:
    header = {"typ": "at+jwt", "alg": "none", "kid": key.kid}
    token = f"{jsonb64(header)}.{jsonb64(claims())}."
    rejected(signer, token, "'none'")


def test_hs256_signed_with_public_key(signer: TokenSigner, key: SigningKey) -> None:
    header = {"typ": "at+jwt", "alg": "HS256", "kid": key.kid}
    signing_input = f"{jsonb64(header)}.{jsonb64(claims())}"
    public_raw = base64.urlsafe_b64decode(key.public_jwk["x"] + "=")
    for secret in (public_raw, key.public_jwk["x"].encode(), json.dumps(key.public_jwk).encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        rejected(signer, f"{signing_input}.{b64(mac)}", "'HS256'")


def test_tampered_payload(signer: TokenSigner) -> None:
    token, _ = issue(signer)
    head, _, signature = token.split(".")
    forged = jsonb64(claims(scope="kpi:write kpi:read admin"))
    rejected(signer, f"{head}.{forged}.{signature}", "signature is invalid")


def test_tampered_signature(signer: TokenSigner) -> None:
    token, _ = issue(signer)
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 1
    rejected(signer, f"{head}.{body}.{b64(bytes(raw))}", "signature is invalid")
    rejected(signer, f"{head}.{body}.", "signature is invalid")


def test_malformed_signature_encoding(signer: TokenSigner) -> None:
    token, _ = issue(signer)
    head, body, _ = token.split(".")
    rejected(signer, f"{head}.{body}.@@@", "not a well-formed JWT")


def test_same_kid_different_key(signer: TokenSigner, key: SigningKey) -> None:
    impostor = replace(generate_signing_key(NOW), kid=key.kid)
    rejected(signer, sign(impostor, claims()), "signature is invalid")


def test_unknown_kid(signer: TokenSigner) -> None:
    other = generate_signing_key(NOW)
    error = rejected(signer, sign(other, claims()), "does not know")
    assert other.kid in error.description


def test_missing_kid(signer: TokenSigner, key: SigningKey) -> None:
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    token = pyjwt.encode(claims(), private, algorithm="EdDSA", headers={"typ": "at+jwt"})
    rejected(signer, token, "kid None")


def test_wrong_typ(signer: TokenSigner, key: SigningKey) -> None:
    rejected(signer, sign(key, claims(), typ="JWT"), "typ is 'JWT'")
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    # PyJWT drops a None typ, leaving the header without one.
    headers = {"typ": None, "kid": key.kid}
    token = pyjwt.encode(claims(), private, algorithm="EdDSA", headers=headers)
    rejected(signer, token, "typ is None")


def test_expired(signer: TokenSigner) -> None:
    token, _ = issue(signer, ttl=60)
    rejected(signer, token, "expired", now=NOW + 3600)


def test_nbf_in_future(signer: TokenSigner, key: SigningKey) -> None:
    rejected(signer, sign(key, claims(nbf=NOW + 30, exp=NOW + 90)), "not valid yet")


def test_iat_in_future(signer: TokenSigner) -> None:
    token, _ = issue(signer, now=NOW + 60)
    error = rejected(signer, token, "not valid yet")
    assert "clocks" in error.description


def test_iat_in_future_without_nbf(signer: TokenSigner, key: SigningKey) -> None:
    rejected(signer, sign(key, claims(iat=NOW + 60)), "issued in the future")


def test_wrong_issuer(signer: TokenSigner) -> None:
    token, _ = issue(signer, issuer="https://other.localhost")
    error = rejected(signer, token, "'https://other.localhost'")
    assert "not by this tenant" in error.description


def test_wrong_audience(signer: TokenSigner, key: SigningKey) -> None:
    token, _ = issue(signer, audience="https://elsewhere")
    rejected(signer, token, "audience 'https://elsewhere'")
    rejected(signer, sign(key, claims(aud=["x", "y"])), "audience ['x', 'y']")


def test_missing_claims(signer: TokenSigner, key: SigningKey) -> None:
    error = rejected(signer, sign(key, claims(jti=None, tenant=None)), "required claim(s)")
    assert "'jti'" in error.description and "'tenant'" in error.description


def test_claim_types(signer: TokenSigner, key: SigningKey) -> None:
    rejected(signer, sign(key, claims(exp="soon")), "'exp' claim is not a number")
    rejected(signer, sign(key, claims(iat=True)), "'iat' claim is not a number")
    rejected(signer, sign(key, claims(sub=1)), "'sub' claim is not a string")


def test_payload_not_object(signer: TokenSigner, key: SigningKey) -> None:
    header = {"typ": "at+jwt", "alg": "EdDSA", "kid": key.kid}
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    signing_input = f"{jsonb64(header)}.{jsonb64([1, 2])}"
    signature = private.sign(signing_input.encode())
    rejected(signer, f"{signing_input}.{b64(signature)}", "not a JSON object")


_FUZZ_SIGNER = TokenSigner(generate_signing_key(NOW), [])


@given(st.text(max_size=300) | st.lists(st.text(max_size=80), max_size=4).map(".".join))
def test_verify_raises_only_invalid_token(token: str) -> None:
    with pytest.raises(InvalidToken):
        _FUZZ_SIGNER.verify(token, issuer=ISS, audience=AUD, now=NOW)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_verify_arbitrary_segments(header: bytes, payload: bytes) -> None:
    with pytest.raises(InvalidToken):
        _FUZZ_SIGNER.verify(
            f"{b64(header)}.{b64(payload)}.{b64(b'x' * 64)}", issuer=ISS, audience=AUD, now=NOW
        )
