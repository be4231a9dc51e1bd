"""Credentials hidden from the integration debugger.

The debugger shows request bodies to every dashboard user, viewers included. A body
should carry KPI data only, but an integration may put credentials in it by mistake: a
``client_secret`` or ``access_token`` field, a secret or a token pasted into a value.
Wherever the debugger shows or hands out stored text (the body, its download, the
values next to errors, the messages), ``redact`` replaces them with ``[redacted]``:

- the value of any JSON member whose name is a credential's (``client_secret``,
  ``access_token``, ``password``, ...), in place, so the rest keeps its layout;
- anything shaped like a kpihub client secret (``khs_`` and 8 or more URL-safe
  characters: a cut-off secret is still hidden) or a JWT (``eyJ...`` and a dot).

What is stored is unchanged: the debugger decides what it shows.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
CREDENTIAL_NAMES = (
    "client_secret",
    "secret",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "password",
    "authorization",
    "api_key",
)
_NAMED = re.compile(
    r'("(?:' + "|".join(CREDENTIAL_NAMES) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)
_SHAPED = re.compile(
    r"khs_[A-Za-z0-9_-]{8,}|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?"
)


def redact(text: str) -> str:
    """``text`` with every credential in it replaced by ``[redacted]``."""
    text = _NAMED.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    return _SHAPED.sub(REDACTED, text)
