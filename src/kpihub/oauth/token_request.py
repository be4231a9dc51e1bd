"""Parsing a ``POST /oauth/token`` request, independent of any web framework.

Accepted, beyond RFC 6749, for integrations written against the article:

- body media types ``application/x-www-form-urlencoded``, the article's
  misspelled ``application/x-www-urlencoded``, and ``application/json`` (an
  object whose parameters are strings); media type parameters such as
  ``charset`` are ignored and the body must be UTF-8;
- ``grant-type`` as an alias of ``grant_type``; sending both is accepted when
  they agree.

Strict where RFC 6749 is: a parameter sent twice is an ``invalid_request``
(§3.2), as is using HTTP Basic and ``client_secret`` in the body together
(§2.3). A ``client_id`` in the body next to HTTP Basic is tolerated when it
names the same client, because several OAuth libraries send it that way.

Checks run in the order Laravel Passport (league/oauth2-server) uses, so a
request with several problems gets the same first error: request syntax, then
grant type, then client authentication, then scope syntax. Whether the scopes
are allowed for the client is decided later, with the client at hand.

``parse_client_request`` applies the same body and client authentication rules
to revocation (RFC 7009) and introspection (RFC 7662) requests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from kpihub.errors import OAuthError
from kpihub.oauth.basic import parse_basic
from kpihub.oauth.schemes import scheme_of, shown_scheme

FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "application/x-www-urlencoded")
JSON_MEDIA_TYPE = "application/json"
ACCEPTED_MEDIA_TYPES = (*FORM_MEDIA_TYPES, JSON_MEDIA_TYPE)
SUPPORTED_GRANT_TYPES = ("client_credentials",)

# A token request has five parameters; the bound keeps a hostile body from
# making the parser build a huge list.
MAX_PARAMETERS = 100

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_SCOPE_BAD_CHAR = re.compile(r"[^\x21\x23-\x5b\x5d-\x7e]")

_AUTH_HOW = (
    "Authenticate the client either with 'Authorization: Basic base64(client_id:client_secret)' "
    "or with client_id and client_secret in the request body."
)


class ClientCredentials(Protocol):
    """What authenticating a client needs, whichever endpoint it came to."""

    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> str: ...
    @property
    def used_basic(self) -> bool: ...


@dataclass(frozen=True)
class TokenRequest:
    """A syntactically valid client credentials token request.

    ``scope`` is None when the client asked for no particular scope, meaning
    the client's allowed scopes.
    """

    grant_type: str
    client_id: str
    client_secret: str
    scope: tuple[str, ...] | None
    used_basic: bool


@dataclass(frozen=True)
class ClientRequest:
    """A revocation (RFC 7009) or introspection (RFC 7662) request: a token and its client.

    ``token_type_hint`` is kept but may be ignored: kpihub has one token type.
    """

    token: str
    token_type_hint: str | None
    client_id: str
    client_secret: str
    used_basic: bool


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for an error message, cut short so messages stay readable."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def _invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def _media_type(content_type: str | None) -> str:
    if content_type is None or not content_type.strip():
        raise _invalid_request(
            "The request has no Content-Type. Send the parameters as "
            "'Content-Type: application/x-www-form-urlencoded' (or application/json)."
        )
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise _invalid_request(
            f"Content-Type {_shown(media_type)} is not accepted at the token endpoint. "
            f"Use one of: {', '.join(ACCEPTED_MEDIA_TYPES)}."
        )
    return media_type


def _body_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid_request(
            f"The request body is not UTF-8 (invalid byte at offset {exc.start}). "
            "Encode the body as UTF-8."
        ) from None


def _form_parameters(body: bytes) -> list[tuple[str, str]]:
    text = _body_text(body)
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except UnicodeDecodeError:
        raise _invalid_request(
            "The form body contains a percent-encoded sequence that is not UTF-8. "
            "Percent-encode parameter values as UTF-8."
        ) from None
    except ValueError:
        raise _invalid_request(
            f"The form body has more than {MAX_PARAMETERS} parameters. Send only grant_type, "
            "client_id, client_secret and scope."
        ) from None


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its key/value pairs, so repeated keys stay visible."""


def _json_parameters(body: bytes) -> list[tuple[str, str]]:
    text = _body_text(body)
    try:
        decoded = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise _invalid_request(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}. Send a JSON object such as "
            '{"grant_type": "client_credentials", "client_id": "...", "client_secret": "..."}.'
        ) from None
    except RecursionError:
        raise _invalid_request("The request body is JSON nested too deeply.") from None
    if not isinstance(decoded, _Pairs):
        raise _invalid_request(
            f"The JSON body is a {type(decoded).__name__}, not an object. Send a JSON object "
            'such as {"grant_type": "client_credentials", "client_id": "...", '
            '"client_secret": "..."}.'
        )
    parameters: list[tuple[str, str]] = []
    for name, value in decoded:
        if name not in _KNOWN_PARAMETERS:
            # RFC 6749 §3.2: unknown parameters are ignored, whatever their type;
            # only the name is kept so a repeated one is still reported.
            parameters.append((name, ""))
        elif isinstance(value, str):
            parameters.append((name, value))
        else:
            raise _invalid_request(
                f"The JSON parameter '{name}' must be a string, not "
                f"{_json_type_name(value)}. Quote the value"
                + (" and separate scopes with spaces." if name == "scope" else ".")
            )
    return parameters


def _json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, _Pairs):
        return "an object"
    return "an array"


_KNOWN_PARAMETERS = frozenset(
    {"grant_type", "grant-type", "client_id", "client_secret", "scope", "token", "token_type_hint"}
)


def _unique(parameters: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in parameters:
        if name in values:
            raise _invalid_request(
                f"Duplicate parameter '{name}': the request contains it more than once "
                "(RFC 6749 §3.2). Send each parameter once."
            )
        values[name] = value
    return values


def _grant_type(params: dict[str, str]) -> str:
    canonical = params.get("grant_type")
    alias = params.get("grant-type")
    if canonical is not None and alias is not None and canonical != alias:
        raise _invalid_request(
            f"Parameters 'grant_type' ({_shown(canonical)}) and 'grant-type' ({_shown(alias)}) "
            "disagree. Send only grant_type=client_credentials."
        )
    grant_type = canonical if canonical is not None else alias
    if not grant_type:
        raise _invalid_request(
            "The 'grant_type' parameter is missing or empty. Send grant_type=client_credentials."
        )
    if grant_type not in SUPPORTED_GRANT_TYPES:
        hint = ""
        if grant_type.strip().lower() in SUPPORTED_GRANT_TYPES:
            hint = " Grant types are case-sensitive and take no spaces."
        raise OAuthError(
            "unsupported_grant_type",
            f"The grant type {_shown(grant_type)} is not supported.{hint} Supported grant "
            f"types: {', '.join(SUPPORTED_GRANT_TYPES)}.",
        )
    return grant_type


def _client_credentials(params: dict[str, str], authorization: str | None) -> tuple[str, str, bool]:
    body_id = params.get("client_id") or None
    body_secret = params.get("client_secret") or None
    if authorization is not None and authorization.strip():
        if scheme_of(authorization).lower() != "basic":
            # basic=True: the client tried the Authorization header, so the 401
            # carries a Basic challenge telling it what is accepted (RFC 6749 §5.2).
            raise OAuthError(
                "invalid_client",
                f"The token endpoint does not accept the Authorization scheme "
                f"{shown_scheme(authorization)}. {_AUTH_HOW}",
                basic=True,
            )
        client_id, client_secret = parse_basic(authorization)
        if body_secret is not None:
            raise _invalid_request(
                "The request uses HTTP Basic and client_secret in the body at the same time. "
                "Use one client authentication method: remove client_id and client_secret "
                "from the body, or drop the Authorization header."
            )
        if body_id is not None and body_id != client_id:
            raise _invalid_request(
                f"The client_id in the body ({_shown(body_id)}) differs from the one in the "
                "Authorization header. Use one client authentication method."
            )
        return client_id, client_secret, True
    if body_id is None and body_secret is None:
        raise OAuthError(
            "invalid_client", f"The request carries no client credentials. {_AUTH_HOW}"
        )
    if body_id is None:
        raise OAuthError(
            "invalid_client",
            "The 'client_id' parameter is missing or empty. Send the client id you were given "
            "together with client_secret.",
        )
    if body_secret is None:
        raise OAuthError(
            "invalid_client",
            "The 'client_secret' parameter is missing or empty. Send the client secret you were "
            "given together with client_id.",
        )
    return body_id, body_secret, False


def parse_scope(scope: str | None) -> tuple[str, ...] | None:
    """Space-delimited scopes (RFC 6749 §3.3) as unique tokens in order; None if none."""
    if scope is None:
        return None
    # Runs of spaces are tolerated: they carry no meaning and clients build
    # the string by concatenation.
    tokens = [token for token in scope.split(" ") if token]
    if not tokens:
        return None
    for token in tokens:
        if not _SCOPE_TOKEN.fullmatch(token):
            bad = _SCOPE_BAD_CHAR.search(token)
            assert bad is not None
            raise OAuthError(
                "invalid_scope",
                f"The scope {_shown(token)} contains the character {bad.group()!r}, which "
                "RFC 6749 §3.3 does not allow. Separate scopes with single spaces, e.g. "
                "scope=kpi:write kpi:read.",
            )
    return tuple(dict.fromkeys(tokens))


def parse_token_request(
    content_type: str | None, body: bytes, authorization: str | None
) -> TokenRequest:
    """Parse a token request; raises ``OAuthError`` saying what is wrong and how to fix it.

    Every error carries ``basic=True`` when an Authorization header was sent, so
    the HTTP layer can answer with the matching ``WWW-Authenticate`` challenge.
    """
    try:
        params = _parameters(content_type, body)
        grant_type = _grant_type(params)
        client_id, client_secret, used_basic = _client_credentials(params, authorization)
        return TokenRequest(
            grant_type=grant_type,
            client_id=client_id,
            client_secret=client_secret,
            scope=parse_scope(params.get("scope")),
            used_basic=used_basic,
        )
    except OAuthError as exc:
        _mark_basic(exc, authorization)
        raise


def parse_client_request(
    content_type: str | None, body: bytes, authorization: str | None
) -> ClientRequest:
    """Parse a revocation or introspection request (``token``, optional
    ``token_type_hint``, client authentication as at the token endpoint).

    Raises ``OAuthError`` like ``parse_token_request``.
    """
    try:
        params = _parameters(content_type, body)
        token = params.get("token")
        if not token:
            raise _invalid_request(
                "The 'token' parameter is missing or empty. Send token=<the access token> "
                "(RFC 7009 §2.1, RFC 7662 §2.1)."
            )
        client_id, client_secret, used_basic = _client_credentials(params, authorization)
        return ClientRequest(
            token=token,
            token_type_hint=params.get("token_type_hint") or None,
            client_id=client_id,
            client_secret=client_secret,
            used_basic=used_basic,
        )
    except OAuthError as exc:
        _mark_basic(exc, authorization)
        raise


def _parameters(content_type: str | None, body: bytes) -> dict[str, str]:
    if _media_type(content_type) == JSON_MEDIA_TYPE:
        return _unique(_json_parameters(body))
    return _unique(_form_parameters(body))


def _mark_basic(exc: OAuthError, authorization: str | None) -> None:
    exc.basic = exc.basic or bool(authorization and authorization.strip())
