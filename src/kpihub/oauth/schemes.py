"""How an error message may name the scheme of an ``Authorization`` header.

Messages name the scheme a client used, so it sees its mistake at once. But a client
that forgets the scheme sends the credential itself as the header's first word
(``Authorization: khs_...`` or ``Authorization: eyJ...``); quoting that word would copy
part of a secret or an access token into the answer, and from there into the
integration debugger. So the word is quoted only when it looks like a scheme.
"""

from __future__ import annotations

import re

# RFC 7235 schemes in use are short words: Basic, Bearer, Digest, DPoP, Token, ApiKey,
# SCRAM-SHA-256, AWS4-HMAC-SHA256. kpihub's secrets and JWTs never match: secrets have
# an underscore after ``khs``, and a JWT is far longer than 20 characters.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,19}")
_WORD = re.compile(r"[A-Za-z]{1,20}")


def scheme_of(value: str) -> str:
    """The first word of an ``Authorization`` header value (compare it, never show it)."""
    return value.strip().partition(" ")[0]


def shown_scheme(value: str) -> str:
    """The scheme of the header ``value`` for an error message.

    ``'Token'`` when the first word looks like a scheme (followed by credentials, or a
    plain word on its own); otherwise a description that repeats none of its characters.
    """
    scheme, _, credentials = value.strip().partition(" ")
    if (credentials.strip() and _SCHEME.fullmatch(scheme)) or _WORD.fullmatch(scheme):
        return repr(scheme)
    return "(not shown: it is no scheme name, and may be a credential sent without one)"
