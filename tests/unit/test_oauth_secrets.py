from __future__ import annotations

import base64
import re

from kpihub.domain import Environment
from kpihub.oauth.secrets import (
    DUMMY_HASH,
    SECRET_SLOTS,
    environment_of_client_id,
    hash_secret,
    new_client_id,
    new_secret,
    verify_secret,
    verify_unknown,
)

KEY = b"k" * 32


def test_client_id_prefix_names_environment() -> None:
    testing = new_client_id(Environment.TESTING)
    production = new_client_id(Environment.PRODUCTION)
    assert re.fullmatch(r"kh_test_[a-z2-7]{24}", testing)
    assert re.fullmatch(r"kh_live_[a-z2-7]{24}", production)
    assert environment_of_client_id(testing) is Environment.TESTING
    assert environment_of_client_id(production) is Environment.PRODUCTION
    assert environment_of_client_id("someone-else") is None


def test_client_ids_are_unique() -> None:
    assert len({new_client_id(Environment.TESTING) for _ in range(1000)}) == 1000


def test_secret_has_prefix_and_256_bits() -> None:
    secret = new_secret()
    assert secret.startswith("khs_")
    body = secret.removeprefix("khs_")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body)
    assert len(base64.urlsafe_b64decode(body + "=")) == 32
    assert new_secret() != secret


def test_hash_is_keyed_hmac_sha256() -> None:
    digest = hash_secret("s3cret", KEY)
    assert len(digest) == 32
    assert digest == hash_secret("s3cret", KEY)
    assert digest != hash_secret("s3cret", b"other key")
    assert digest != hash_secret("s3creT", KEY)


def test_hash_accepts_lone_surrogates() -> None:
    assert len(hash_secret("\ud800", KEY)) == 32


def test_verify_matches_current_or_old_secret() -> None:
    current, old = new_secret(), new_secret()
    hashes = (hash_secret(current, KEY), hash_secret(old, KEY))
    assert verify_secret(current, KEY, hashes)
    assert verify_secret(old, KEY, hashes)
    assert not verify_secret(new_secret(), KEY, hashes)


def test_verify_with_unset_slot() -> None:
    secret = new_secret()
    assert verify_secret(secret, KEY, (hash_secret(secret, KEY), None))
    assert not verify_secret(secret, KEY, (None, None))
    assert not verify_secret(secret, KEY, ())


def test_dummy_hash_never_matches() -> None:
    # A slot set to the dummy value itself must not count as a match either.
    assert not verify_secret("anything", KEY, (None,))
    assert len(DUMMY_HASH) == 32


def test_verify_wrong_key() -> None:
    secret = new_secret()
    assert not verify_secret(secret, b"other", (hash_secret(secret, KEY),))


def test_verify_unknown_is_always_false() -> None:
    assert SECRET_SLOTS == 2
    assert verify_unknown(new_secret(), KEY) is False
    assert verify_unknown("", KEY) is False
