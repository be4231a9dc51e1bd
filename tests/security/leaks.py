"""Whether a text gives away a credential, whole or in part."""

from __future__ import annotations

from kpihub.oauth.secrets import SECRET_PREFIX

# Twelve base64url characters are 72 bits: a run that long of a secret's random part
# is a real leak, and no shorter run turns up by chance in an answer or a log.
RUN = 12


def pieces(credential: str) -> list[str]:
    """What must not be shown of ``credential``: every run of its secret part.

    A client secret's secret part is all but its public ``khs_`` prefix; an access
    token's is its signature (the header and claims are readable by design, but
    without the signature they are no credential). Anything else counts whole.
    """
    if credential.startswith(SECRET_PREFIX):
        part = credential.removeprefix(SECRET_PREFIX)
    elif credential.count(".") == 2:
        part = credential.rsplit(".", 1)[1]
    else:
        part = credential
    if len(part) <= RUN:
        return [part]
    return [part[i : i + RUN] for i in range(len(part) - RUN + 1)]


def leaked(text: str, *credentials: str) -> list[str]:
    """The pieces of ``credentials`` found in ``text`` (empty: nothing leaked)."""
    return [piece for credential in credentials for piece in pieces(credential) if piece in text]


def assert_not_leaked(where: str, text: str, *credentials: str) -> None:
    found = leaked(text, *credentials)
    assert not found, f"{where} gives away {found[:3]} ...:\n{text[:2000]}"
