"""HTTP Basic client authentication at the token endpoint (RFC 6749 §2.3.1).

RFC 6749 asks clients to form-urlencode the client id and secret *before*
joining them with ``:`` and base64-encoding them, so a ``:`` inside a secret
arrives as ``%3A`` and the first literal colon always separates the two.
kpihub's own ids and secrets contain nothing that form-urlencoding changes, so
clients that skip the encoding (as many HTTP libraries do) work as well.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from kpihub.errors import OAuthError

_HOW = (
    "Send 'Authorization: Basic <credentials>' where <credentials> is the base64 of "
    "'<client_id>:<client_secret>' (each form-urlencoded first), or send client_id and "
    "client_secret in the request body instead."
)


def _fail(problem: str) -> OAuthError:
    return OAuthError("invalid_client", f"{problem} {_HOW}", basic=True)


def parse_basic(header_value: str) -> tuple[str, str]:
    """Split an ``Authorization: Basic ...`` header value into (client_id, client_secret).

    ``header_value`` is the whole header value, scheme included; the scheme is
    matched case-insensitively (RFC 7235 §2.1). Raises ``OAuthError``
    (``invalid_client``, ``basic=True``) naming the problem.
    """
    scheme, _, credentials = header_value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _fail("The Authorization header does not use the Basic scheme.")
    credentials = credentials.strip()
    if not credentials:
        raise _fail("The Authorization header has no credentials after 'Basic'.")
    try:
        # validate=True: reject stray characters instead of silently dropping
        # them, which would authenticate something other than what was sent.
        raw = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(
            "The Basic credentials are not valid base64 (standard alphabet, with '=' padding)."
        ) from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("The Basic credentials are not UTF-8 text once base64-decoded.") from None
    encoded_id, colon, encoded_secret = decoded.partition(":")
    if not colon:
        raise _fail(
            "The Basic credentials have no ':' between the client id and the client secret."
        )
    try:
        client_id = unquote_plus(encoded_id, encoding="utf-8", errors="strict")
        client_secret = unquote_plus(encoded_secret, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _fail(
            "The Basic credentials contain a percent-encoded sequence that is not UTF-8."
        ) from None
    if not client_id:
        raise _fail("The client id in the Basic credentials is empty.")
    if not client_secret:
        raise _fail("The client secret in the Basic credentials is empty.")
    return client_id, client_secret
