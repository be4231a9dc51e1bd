"""JWT access tokens (RFC 9068) signed with Ed25519, and the JWKS that publishes the keys.

Ed25519 (JWS ``alg: EdDSA``) because it has the fastest verification of the
asymmetric algorithms, and verification runs on every API request. Keys are
asymmetric so that verifying nodes need no signing secret, and are named by
their RFC 7638 thumbprint so a ``kid`` can never point at two different keys.

Rotation: a ``TokenSigner`` signs with one key and verifies with every key it
is given; keep the previous key verifiable for at least the longest token TTL
after the switch.

Claims issued: ``iss`` (the tenant's URL), ``aud``, ``sub`` and ``client_id``
(the client id), ``exp``, ``iat``, ``nbf``, ``jti`` (128 random bits),
``scope`` (space-separated), ``env`` (``testing``/``production``) and
``tenant`` (the tenant name). ``verify`` requires all but ``nbf``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWS
from jwt import encode as jwt_encode
from jwt.exceptions import InvalidSignatureError, PyJWTError

from kpihub.domain import SigningKey
from kpihub.errors import InvalidToken

ALGORITHM = "EdDSA"
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §2.1, §4
REQUIRED_CLAIMS = (
    "iss",
    "aud",
    "sub",
    "client_id",
    "exp",
    "iat",
    "jti",
    "scope",
    "env",
    "tenant",
)
# Ours are ~500 characters; the bound keeps hostile input cheap to reject and
# the verified-token cache small.
MAX_TOKEN_LENGTH = 4096
# Clients reuse a token for its whole lifetime, so remembering recently verified
# tokens skips the signature check (most of the cost) for nearly every request.
VERIFIED_CACHE_SIZE = 4096

_GET_ANOTHER = "Request a new access token from this server's /oauth/token endpoint."
_json_decoder = msgspec.json.Decoder()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jwk_thumbprint(public_jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an OKP public JWK."""
    # RFC 7638 §3.2: only the required members, sorted, no whitespace.
    required = {name: public_jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def generate_signing_key(now: int) -> SigningKey:
    """A new Ed25519 signing key created at ``now``, its ``kid`` the JWK thumbprint."""
    private_key = Ed25519PrivateKey.generate()
    x = _b64url(
        private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x}
    kid = jwk_thumbprint(jwk)
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey(kid=kid, private_pem=private_pem, public_jwk=jwk, created_at=now)


def _public_key(key: SigningKey) -> Ed25519PublicKey:
    jwk = key.public_jwk
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError(f"signing key {key.kid!r} is not an Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class UnknownSigningKey(InvalidToken):
    """The token names a key this signer does not hold (retired, or newer than it)."""


class TokenSigner:
    """Issues and verifies access tokens with a fixed set of keys.

    ``current`` signs; ``verifiable`` (plus ``current``) verify. Build a new
    signer when the key set changes: the verified-token cache relies on the
    set being fixed.
    """

    def __init__(self, current: SigningKey, verifiable: Iterable[SigningKey]) -> None:
        self._current = current
        private_key = serialization.load_pem_private_key(current.private_pem, password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError(f"signing key {current.kid!r} is not an Ed25519 private key")
        self._private_key = private_key
        keys = {key.kid: key for key in verifiable}
        keys[current.kid] = current
        self._keys = keys
        self._public_keys = {kid: _public_key(key) for kid, key in keys.items()}
        self._jws = PyJWS(algorithms=[ALGORITHM])
        self._headers = {"typ": TOKEN_TYPE, "kid": current.kid}
        self._verified: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def kid(self) -> str:
        return self._current.kid

    def issue(
        self,
        *,
        issuer: str,
        audience: str,
        client_id: str,
        environment: str,
        scopes: Sequence[str],
        ttl: int,
        now: int,
        tenant: str,
    ) -> tuple[str, dict[str, Any]]:
        """A signed access token and its claims."""
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": client_id,
            "client_id": client_id,
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(scopes),
            "env": environment,
            "tenant": tenant,
        }
        token = jwt_encode(claims, self._private_key, algorithm=ALGORITHM, headers=self._headers)
        return token, claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set of every verifiable key, for ``/.well-known/jwks.json``."""
        return {"keys": [dict(key.public_jwk) for key in self._keys.values()]}

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str,
        now: int | None = None,
        leeway: int = 5,
    ) -> dict[str, Any]:
        """The claims of a valid token, or ``InvalidToken`` saying why it is not.

        Descriptions name the problem but never repeat the token.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            with self._lock:
                if len(self._verified) >= VERIFIED_CACHE_SIZE:
                    # Dicts keep insertion order: this drops the oldest entry.
                    self._verified.pop(next(iter(self._verified)), None)
                self._verified[token] = claims
        _check_claims(
            claims,
            issuer=issuer,
            audience=audience,
            now=int(time.time()) if now is None else now,
            leeway=leeway,
        )
        return dict(claims)

    def _verify_signature(self, token: str) -> dict[str, Any]:
        """Header checks and signature; returns the claims, unchecked against time."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(
                f"The access token is longer than {MAX_TOKEN_LENGTH} characters, so it is not "
                f"one this server issued. {_GET_ANOTHER}",
                reason="malformed",
            )
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken(
                "The access token is not a JWT (expected three dot-separated parts). "
                f"Send the access_token value exactly as /oauth/token returned it. {_GET_ANOTHER}",
                reason="malformed",
            )
        try:
            header = _json_decoder.decode(_b64url_decode(parts[0]))
        except (ValueError, msgspec.DecodeError):
            header = None
        if not isinstance(header, dict):
            raise InvalidToken(
                "The access token is not a JWT (its header is not base64url-encoded JSON). "
                f"Send the access_token value exactly as /oauth/token returned it. {_GET_ANOTHER}",
                reason="malformed",
            )
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
            raise InvalidToken(
                f"The token is not an access token (header typ is {typ!r}, expected "
                f"'{TOKEN_TYPE}'). Send the access_token from /oauth/token, not another JWT.",
                reason="malformed",
            )
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise InvalidToken(
                f"The access token uses the algorithm {alg!r}; this server only accepts "
                f"'{ALGORITHM}'. {_GET_ANOTHER}",
                reason="malformed",
            )
        kid = header.get("kid")
        public_key = self._public_keys.get(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise UnknownSigningKey(
                f"The access token was signed with a key this server does not know "
                f"(kid {kid!r}); the key may have been retired. {_GET_ANOTHER}",
                reason="unknown_key",
            )
        try:
            decoded = self._jws.decode_complete(token, public_key, algorithms=[ALGORITHM])
        except InvalidSignatureError:
            raise InvalidToken(
                f"The access token's signature is invalid: it was altered or not issued by "
                f"this server. {_GET_ANOTHER}",
                reason="bad_signature",
            ) from None
        except PyJWTError:
            raise InvalidToken(
                f"The access token is not a well-formed JWT. {_GET_ANOTHER}",
                reason="malformed",
            ) from None
        try:
            claims = _json_decoder.decode(decoded["payload"])
        except msgspec.DecodeError:
            claims = None
        if not isinstance(claims, dict):
            raise InvalidToken(
                f"The access token's payload is not a JSON object. {_GET_ANOTHER}",
                reason="malformed",
            )
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise InvalidToken(
                "The access token lacks the required claim(s) "
                + ", ".join(repr(name) for name in missing)
                + f". {_GET_ANOTHER}",
                reason="malformed",
            )
        for name in ("exp", "iat", "nbf"):
            if name in claims and not _is_number(claims[name]):
                raise InvalidToken(
                    f"The access token's '{name}' claim is not a number of seconds. {_GET_ANOTHER}",
                    reason="malformed",
                )
        for name in ("iss", "sub", "client_id", "jti", "scope", "env", "tenant"):
            if not isinstance(claims[name], str):
                raise InvalidToken(
                    f"The access token's '{name}' claim is not a string. {_GET_ANOTHER}",
                    reason="malformed",
                )
        return claims


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_claims(
    claims: dict[str, Any], *, issuer: str, audience: str, now: int, leeway: int
) -> None:
    if claims["iss"] != issuer:
        raise InvalidToken(
            f"The access token was issued by {_shown(claims['iss'])}, not by this tenant "
            f"({issuer!r}). Request a token from this tenant's /oauth/token endpoint.",
            reason="wrong_tenant",
        )
    aud = claims["aud"]
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise InvalidToken(
            f"The access token is meant for audience {_shown(aud)}, not {audience!r}. "
            f"Request a token from this tenant's /oauth/token endpoint.",
            reason="wrong_tenant",
        )
    if claims["exp"] + leeway <= now:
        raise InvalidToken(
            f"The access token expired {int(now - claims['exp'])} s ago. {_GET_ANOTHER}",
            reason="expired",
        )
    nbf = claims.get("nbf")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken(
            f"The access token is not valid yet (nbf is {int(nbf - now)} s in the future); "
            "check the clocks of the servers involved.",
            reason="not_yet_valid",
        )
    if claims["iat"] > now + leeway:
        raise InvalidToken(
            f"The access token was issued in the future (iat is {int(claims['iat'] - now)} s "
            "ahead); check the clocks of the servers involved.",
            reason="not_yet_valid",
        )
