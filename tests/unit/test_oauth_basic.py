from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpihub.domain import Environment
from kpihub.errors import OAuthError
from kpihub.oauth.basic import parse_basic
from kpihub.oauth.secrets import new_client_id, new_secret


def basic(raw: str | bytes) -> str:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return "Basic " + base64.b64encode(data).decode("ascii")


def test_happy_path() -> None:
    assert parse_basic(basic("kh_test_abc:khs_xyz")) == ("kh_test_abc", "khs_xyz")


def test_scheme_is_case_insensitive_and_whitespace_tolerated() -> None:
    value = "  bAsIc   " + base64.b64encode(b"id:secret").decode() + " "
    assert parse_basic(value) == ("id", "secret")


def test_percent_encoded_colon_in_secret() -> None:
    assert parse_basic(basic("my%3Aid:pa%3Ass%2Bword+x")) == ("my:id", "pa:ss+word x")


def test_literal_colons_after_the_first_belong_to_the_secret() -> None:
    assert parse_basic(basic("id:a:b")) == ("id", "a:b")


def test_unencoded_credentials_of_our_alphabet_work() -> None:
    assert parse_basic(basic("kh_live_abc:khs_A-b_C")) == ("kh_live_abc", "khs_A-b_C")


def expect_invalid_client(value: str, words: str) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        parse_basic(value)
    error = info.value
    assert error.error == "invalid_client"
    assert error.status == 401
    assert error.basic is True
    assert words in error.description
    assert "Authorization: Basic" in error.description
    return error


def test_other_scheme() -> None:
    expect_invalid_client("Bearer abc", "does not use the Basic scheme")


def test_no_credentials() -> None:
    expect_invalid_client("Basic", "no credentials")
    expect_invalid_client("Basic   ", "no credentials")


def test_bad_base64() -> None:
    expect_invalid_client("Basic not*base64", "not valid base64")
    expect_invalid_client("Basic aWQ6c2VjcmU", "not valid base64")  # padding missing
    expect_invalid_client("Basic aWQ6c2VjcmV0\u00e9=", "not valid base64")


def test_not_utf8() -> None:
    expect_invalid_client(basic(b"\xff\xfe:secret"), "not UTF-8")


def test_no_colon() -> None:
    expect_invalid_client(basic("idsecret"), "no ':'")


def test_percent_encoding_not_utf8() -> None:
    expect_invalid_client(basic("id:%FF"), "percent-encoded")


def test_empty_parts() -> None:
    expect_invalid_client(basic(":secret"), "client id")
    expect_invalid_client(basic("id:"), "client secret")


def test_description_never_echoes_the_secret() -> None:
    error = expect_invalid_client(basic("id:%FFsupersecret"), "percent-encoded")
    assert "supersecret" not in error.description


@given(st.text())
def test_never_raises_anything_but_oauth_error(value: str) -> None:
    try:
        parse_basic(value)
    except OAuthError as error:
        assert error.error == "invalid_client"


@given(st.binary())
def test_arbitrary_credentials_bytes(raw: bytes) -> None:
    try:
        parse_basic(basic(raw))
    except OAuthError as error:
        assert error.error == "invalid_client"


@given(st.text(min_size=1), st.text(min_size=1))
def test_round_trip(client_id: str, client_secret: str) -> None:
    # Lone surrogates cannot be UTF-8-encoded, so no client could send them.
    try:
        client_id.encode("utf-8")
        client_secret.encode("utf-8")
    except UnicodeEncodeError:
        return
    value = basic(quote_plus(client_id) + ":" + quote_plus(client_secret))
    assert parse_basic(value) == (client_id, client_secret)


@given(st.sampled_from(list(Environment)), st.sampled_from(["Basic", "basic", "BASIC"]))
def test_kpihub_credentials_round_trip_unencoded(environment: Environment, scheme: str) -> None:
    # What most HTTP libraries send: no form-encoding, which our alphabet never needs.
    client_id, secret = new_client_id(environment), new_secret()
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    assert parse_basic(f"{scheme} {raw}") == (client_id, secret)
    assert parse_basic(f"  {scheme}  {raw}  ") == (client_id, secret)


@given(st.from_regex(r"\A[A-Za-z0-9+/]*={0,3}\Z"))
def test_base64_shaped_credentials_never_crash(credentials: str) -> None:
    try:
        client_id, client_secret = parse_basic("Basic " + credentials)
    except OAuthError as error:
        assert error.error == "invalid_client"
        assert error.basic is True
    else:
        assert client_id and client_secret
