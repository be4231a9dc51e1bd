from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpihub.errors import OAuthError
from kpihub.oauth.token_request import (
    ClientCredentials,
    ClientRequest,
    TokenRequest,
    parse_client_request,
    parse_scope,
    parse_token_request,
)

FORM = "application/x-www-form-urlencoded"
CREDS = {"client_id": "kh_test_abc", "client_secret": "khs_secret"}


def form(**params: str) -> bytes:
    return urlencode(params).encode()


def basic(client_id: str = "kh_test_abc", secret: str = "khs_secret") -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def fails(
    code: str,
    words: str,
    body: bytes,
    *,
    content_type: str | None = FORM,
    authorization: str | None = None,
) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        parse_token_request(content_type, body, authorization)
    error = info.value
    assert error.error == code, error.description
    assert words in error.description, error.description
    assert "khs_secret" not in error.description
    return error


def test_form_body_credentials() -> None:
    request = parse_token_request(FORM, form(grant_type="client_credentials", **CREDS), None)
    assert request == TokenRequest(
        grant_type="client_credentials",
        client_id="kh_test_abc",
        client_secret="khs_secret",
        scope=None,
        used_basic=False,
    )


def test_article_request_misspelled_type_and_grant_dash_type() -> None:
    body = b"grant-type=client_credentials&client_id=kh_test_abc&client_secret=khs_secret&scope="
    request = parse_token_request("application/x-www-urlencoded", body, None)
    assert request.grant_type == "client_credentials"
    assert request.client_id == "kh_test_abc"
    assert request.scope is None


def test_charset_parameter_and_case_ignored() -> None:
    request = parse_token_request(
        "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        form(grant_type="client_credentials", **CREDS),
        None,
    )
    assert request.client_secret == "khs_secret"


def test_json_body() -> None:
    body = json.dumps(
        {"grant_type": "client_credentials", **CREDS, "scope": "kpi:write", "extra": [1, {}]}
    ).encode()
    request = parse_token_request("application/json; charset=utf-8", body, None)
    assert request.scope == ("kpi:write",)
    assert request.client_id == "kh_test_abc"


def test_basic_auth() -> None:
    request = parse_token_request(FORM, form(grant_type="client_credentials"), basic())
    assert request.used_basic is True
    assert (request.client_id, request.client_secret) == ("kh_test_abc", "khs_secret")


def test_basic_auth_lowercase_scheme() -> None:
    request = parse_token_request(
        FORM, form(grant_type="client_credentials"), basic().replace("Basic", "basic")
    )
    assert request.used_basic is True


def test_basic_with_same_client_id_in_body_is_tolerated() -> None:
    request = parse_token_request(
        FORM, form(grant_type="client_credentials", client_id="kh_test_abc"), basic()
    )
    assert request.used_basic is True


def test_scope_parsing() -> None:
    request = parse_token_request(
        FORM,
        form(grant_type="client_credentials", scope="kpi:write  kpi:read kpi:write", **CREDS),
        None,
    )
    assert request.scope == ("kpi:write", "kpi:read")
    assert parse_scope(None) is None
    assert parse_scope("") is None
    assert parse_scope("   ") is None
    assert parse_scope("a!#[]~") == ("a!#[]~",)


def test_both_grant_type_spellings_agreeing() -> None:
    body = form(**{"grant_type": "client_credentials", "grant-type": "client_credentials"}, **CREDS)
    assert parse_token_request(FORM, body, None).grant_type == "client_credentials"


# --- errors -----------------------------------------------------------------


def test_missing_content_type() -> None:
    fails("invalid_request", "no Content-Type", form(**CREDS), content_type=None)
    fails("invalid_request", "no Content-Type", form(**CREDS), content_type=" ")


def test_unsupported_content_type() -> None:
    error = fails("invalid_request", "'text/plain'", b"", content_type="text/plain; charset=x")
    assert "application/x-www-form-urlencoded" in error.description
    assert "application/json" in error.description
    assert error.status == 400


def test_body_not_utf8() -> None:
    fails("invalid_request", "not UTF-8", b"grant_type=\xff")


def test_percent_encoding_not_utf8() -> None:
    fails("invalid_request", "percent-encoded", b"grant_type=%FF")


def test_too_many_parameters() -> None:
    body = "&".join(f"p{i}=1" for i in range(200)).encode()
    fails("invalid_request", "more than 100 parameters", body)


def test_invalid_json() -> None:
    fails("invalid_request", "line 1 column", b"{", content_type="application/json")


def test_json_not_object() -> None:
    fails("invalid_request", "not an object", b"[]", content_type="application/json")


def test_json_non_string_parameter() -> None:
    body = json.dumps({"grant_type": "client_credentials", **CREDS, "scope": ["a"]}).encode()
    fails(
        "invalid_request",
        "'scope' must be a string, not an array",
        body,
        content_type="application/json",
    )
    body = json.dumps({"grant_type": 1, **CREDS}).encode()
    fails(
        "invalid_request",
        "'grant_type' must be a string, not a number",
        body,
        content_type="application/json",
    )


def test_json_duplicate_key() -> None:
    body = b'{"grant_type":"client_credentials","client_id":"a","client_id":"a"}'
    fails(
        "invalid_request", "Duplicate parameter 'client_id'", body, content_type="application/json"
    )


def test_duplicate_parameter() -> None:
    body = b"grant_type=client_credentials&grant_type=client_credentials"
    fails("invalid_request", "Duplicate parameter 'grant_type'", body)
    body = form(grant_type="client_credentials", **CREDS) + b"&scope=a&scope=b"
    fails("invalid_request", "Duplicate parameter 'scope'", body)


def test_grant_type_spellings_conflicting() -> None:
    body = form(**{"grant_type": "client_credentials", "grant-type": "password"}, **CREDS)
    fails("invalid_request", "disagree", body)


def test_missing_grant_type() -> None:
    fails("invalid_request", "'grant_type' parameter is missing", form(**CREDS))
    fails("invalid_request", "'grant_type' parameter is missing", form(grant_type="", **CREDS))


def test_unsupported_grant_type() -> None:
    error = fails("unsupported_grant_type", "'password'", form(grant_type="password", **CREDS))
    assert "client_credentials" in error.description
    error = fails(
        "unsupported_grant_type", "case-sensitive", form(grant_type="Client_Credentials", **CREDS)
    )


def test_both_authentication_methods() -> None:
    error = fails(
        "invalid_request",
        "one client authentication method",
        form(grant_type="client_credentials", **CREDS),
        authorization=basic(),
    )
    assert error.basic is True
    assert error.status == 400


def test_basic_and_different_client_id_in_body() -> None:
    fails(
        "invalid_request",
        "one client authentication method",
        form(grant_type="client_credentials", client_id="kh_test_other"),
        authorization=basic(),
    )


def test_no_credentials() -> None:
    error = fails("invalid_client", "no client credentials", form(grant_type="client_credentials"))
    assert error.status == 401
    assert error.basic is False


def test_missing_client_id_or_secret() -> None:
    fails(
        "invalid_client",
        "'client_id' parameter is missing",
        form(grant_type="client_credentials", client_secret="khs_secret"),
    )
    fails(
        "invalid_client",
        "'client_secret' parameter is missing",
        form(grant_type="client_credentials", client_id="kh_test_abc"),
    )
    fails(
        "invalid_client",
        "'client_secret' parameter is missing",
        form(grant_type="client_credentials", client_id="kh_test_abc", client_secret=""),
    )


def test_other_authorization_scheme() -> None:
    error = fails(
        "invalid_client",
        "'Bearer'",
        form(grant_type="client_credentials", **CREDS),
        authorization="Bearer abc",
    )
    assert error.basic is True
    assert error.status == 401


def test_malformed_basic() -> None:
    error = fails(
        "invalid_client",
        "not valid base64",
        form(grant_type="client_credentials"),
        authorization="Basic !!!",
    )
    assert error.basic is True


def test_invalid_scope_characters() -> None:
    body = form(grant_type="client_credentials", scope='kpi:write "kpi:read"', **CREDS)
    error = fails("invalid_scope", "'\"'", body)
    assert "RFC 6749 §3.3" in error.description
    fails(
        "invalid_scope",
        "'\\t'",
        form(grant_type="client_credentials", scope="kpi:write\tkpi:read", **CREDS),
    )


def test_errors_carry_basic_flag_when_authorization_sent() -> None:
    error = fails(
        "unsupported_grant_type", "'password'", form(grant_type="password"), authorization=basic()
    )
    assert error.basic is True
    error = fails(
        "invalid_scope",
        "'\\\\'",
        form(grant_type="client_credentials", scope="a\\b"),
        authorization=basic(),
    )
    assert error.basic is True


def test_check_order_grant_type_before_client() -> None:
    fails("unsupported_grant_type", "'password'", form(grant_type="password"))


# --- revocation / introspection requests ----------------------------------


def test_client_request_form() -> None:
    request = parse_client_request(
        FORM, form(token="abc.def.ghi", token_type_hint="access_token", **CREDS), None
    )
    assert request == ClientRequest(
        token="abc.def.ghi",
        token_type_hint="access_token",
        client_id="kh_test_abc",
        client_secret="khs_secret",
        used_basic=False,
    )


def test_client_request_json_with_basic() -> None:
    body = json.dumps({"token": "t"}).encode()
    request = parse_client_request("application/json", body, basic())
    assert request.used_basic is True
    assert request.token_type_hint is None
    credentials: ClientCredentials = request
    assert credentials.client_id == "kh_test_abc"


def test_token_request_satisfies_client_credentials() -> None:
    credentials: ClientCredentials = parse_token_request(
        FORM, form(grant_type="client_credentials", **CREDS), None
    )
    assert credentials.client_secret == "khs_secret"


def test_client_request_missing_token() -> None:
    with pytest.raises(OAuthError) as info:
        parse_client_request(FORM, form(**CREDS), None)
    assert info.value.error == "invalid_request"
    assert "'token' parameter is missing" in info.value.description


def test_client_request_errors_share_token_endpoint_rules() -> None:
    with pytest.raises(OAuthError) as info:
        parse_client_request(FORM, form(token="t", **CREDS), basic())
    assert info.value.error == "invalid_request"
    assert info.value.basic is True
    with pytest.raises(OAuthError) as info:
        parse_client_request(FORM, form(token="t"), None)
    assert info.value.error == "invalid_client"
    with pytest.raises(OAuthError) as info:
        parse_client_request(FORM, b"token=a&token=b", None)
    assert "Duplicate parameter 'token'" in info.value.description


# -- properties ----------------------------------------------------------------------

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS = "".join(chr(c) for c in [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)])
_SCOPE_TOKENS = st.text(alphabet=_SCOPE_CHARS, min_size=1, max_size=12)


@given(st.lists(_SCOPE_TOKENS, max_size=6), st.lists(st.integers(1, 3), min_size=7, max_size=7))
def test_scope_round_trip(tokens: list[str], gaps: list[int]) -> None:
    # Joined by runs of spaces, with spaces around: the same tokens, once each, in order.
    text = " " * gaps[0] + "".join(t + " " * g for t, g in zip(tokens, gaps[1:], strict=False))
    assert parse_scope(text) == (tuple(dict.fromkeys(tokens)) or None)
    assert parse_scope(" ".join(tokens)) == (tuple(dict.fromkeys(tokens)) or None)


@given(st.text(max_size=40))
def test_scope_on_arbitrary_text_is_tokens_or_invalid_scope(text: str) -> None:
    try:
        scope = parse_scope(text)
    except OAuthError as error:
        assert error.error == "invalid_scope"
        assert error.status == 400
        assert "RFC 6749" in error.description
    else:
        assert scope is None or all(t and set(t) <= set(_SCOPE_CHARS) for t in scope)
        assert scope is None or " ".join(scope).split(" ") == list(scope)


_CONTENT_TYPES = (
    st.none()
    | st.sampled_from(
        [FORM, "application/x-www-urlencoded", "application/json", "application/json; charset=x"]
    )
    | st.text(max_size=20)
)
_AUTHORIZATIONS = (
    st.none()
    | st.text(max_size=40)
    | st.binary(max_size=30).map(lambda raw: "Basic " + base64.b64encode(raw).decode())
)
_BODIES = (
    st.binary(max_size=60)
    | st.dictionaries(
        st.sampled_from(["grant_type", "grant-type", "client_id", "client_secret", "scope"]),
        st.text(max_size=12),
    ).map(lambda params: urlencode(params).encode())
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers()).map(
        lambda doc: json.dumps(doc).encode()
    )
)


@settings(max_examples=300)
@given(_CONTENT_TYPES, _BODIES, _AUTHORIZATIONS)
def test_token_request_raises_only_oauth_errors(
    content_type: str | None, body: bytes, authorization: str | None
) -> None:
    for parse in (parse_token_request, parse_client_request):
        try:
            parse(content_type, body, authorization)
        except OAuthError as error:
            assert error.status in (400, 401)
            assert error.description
            # The client tried the header, so a 401 can carry a Basic challenge.
            assert error.basic == bool(authorization and authorization.strip())
