"""Client ids, client secrets, and how secrets are stored and checked.

Formats (stable; secret scanners and support staff rely on them):

- client id: ``kh_test_`` (testing) or ``kh_live_`` (production) followed by 24
  lowercase base32 characters (120 random bits). The prefix lets anyone tell the
  environment of a credential at a glance, before it is sent anywhere.
- secret: ``khs_`` followed by 43 URL-safe base64 characters (256 random bits).
  The prefix makes leaked secrets easy to match by scanners. The alphabet
  (``A-Z a-z 0-9 - _``) is unchanged by form-urlencoding, so a client that
  forgets to percent-encode its credentials for HTTP Basic still works.

Secrets are never stored: only HMAC-SHA-256(server key, secret) is. A keyed hash
rather than a slow password hash is enough because secrets carry 256 bits of
entropy (no dictionary to attack), and it keeps the token endpoint cheap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from kpihub.domain import Environment

CLIENT_ID_PREFIXES: dict[Environment, str] = {
    Environment.TESTING: "kh_test_",
    Environment.PRODUCTION: "kh_live_",
}
SECRET_PREFIX = "khs_"  # noqa: S105 - a prefix, not a secret

# A client has a current and, during rotation, an old secret hash. Unknown
# clients are checked against this many dummies so they cost the same.
SECRET_SLOTS = 2

# Stands in for an unset hash. A real HMAC matching it would need a SHA-256
# preimage, so comparing against it can never succeed.
DUMMY_HASH = hashlib.sha256(b"kpihub: no secret is stored in this slot").digest()


def new_client_id(environment: Environment) -> str:
    """A fresh client id whose prefix names ``environment``."""
    random_part = base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
    return CLIENT_ID_PREFIXES[environment] + random_part


def environment_of_client_id(client_id: str) -> Environment | None:
    """The environment a client id's prefix names, or None for a foreign id."""
    for environment, prefix in CLIENT_ID_PREFIXES.items():
        if client_id.startswith(prefix):
            return environment
    return None


def new_secret() -> str:
    """A fresh client secret: ``khs_`` and 256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str, key: bytes) -> bytes:
    """HMAC-SHA-256(key, secret) as 32 raw bytes."""
    # surrogatepass: a JSON body may carry lone surrogates; hashing them must
    # fail the comparison later, not crash here.
    return hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def verify_secret(secret: str, key: bytes, hashes: Sequence[bytes | None]) -> bool:
    """Whether ``secret`` matches any of ``hashes`` (current and old during rotation).

    Every slot is compared, set or not, so the time taken depends neither on
    which slot matched nor on how many are set.
    """
    digest = hash_secret(secret, key)
    matched = False
    for stored in hashes:
        candidate = DUMMY_HASH if stored is None else stored
        # Non-short-circuit `&` and `|=`: every comparison always runs.
        matched |= hmac.compare_digest(digest, candidate) & (stored is not None)
    return matched


def verify_unknown(secret: str, key: bytes) -> bool:
    """The work of ``verify_secret`` for a client that does not exist; always False.

    Call it when the client id is unknown so that response time does not reveal
    which client ids exist.
    """
    return verify_secret(secret, key, (None,) * SECRET_SLOTS)
