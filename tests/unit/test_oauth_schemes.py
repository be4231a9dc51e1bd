"""Naming an Authorization scheme in a message without echoing a credential."""

from __future__ import annotations

import pytest

from kpihub.oauth.schemes import scheme_of, shown_scheme
from kpihub.oauth.secrets import new_secret


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ("Token abc", "'Token'"),
        ("  Digest username=x", "'Digest'"),
        ("SCRAM-SHA-256 data", "'SCRAM-SHA-256'"),
        ("Bearer", "'Bearer'"),
    ],
)
def test_a_scheme_is_named(header: str, shown: str) -> None:
    assert shown_scheme(header) == shown


def test_a_credential_sent_without_a_scheme_is_not_repeated() -> None:
    secret = new_secret()
    token_like = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0." + "s" * 86
    for header in (secret, token_like, f"{secret} trailing", "abc123def456"):
        shown = shown_scheme(header)
        assert header.split()[0] not in shown
        assert not any(header[i : i + 6] in shown for i in range(len(header) - 5))


def test_scheme_of_is_the_first_word() -> None:
    assert scheme_of("  basic dXNlcjpwYXNz ") == "basic"
    assert scheme_of(new_secret()).startswith("khs_")
