"""The OpenAPI 3.1 description of every endpoint and error shape, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kpihub import __version__
from kpihub.http.responses import JsonResponse
from kpihub.ingest.times import MAX_EPOCH_SECONDS
from kpihub.ingest.validate import MAX_TEXT, MAX_VERSION
from kpihub.query.points import POINT_FIELDS
from kpihub.settings import SUPPORTED_API_VERSIONS

_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
_ID = {"oneOf": [_TEXT, {"type": "integer"}]}
_TIME = {
    "description": "Epoch seconds (number or numeric string), 'Y-m-d H:i:s' in the tenant's "
    "time zone, or RFC 3339 with an offset.",
    # Not oneOf integer/number/string: an integer is a number too, so an integer time
    # would match two branches and be invalid under oneOf.
    "type": ["number", "string"],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RATE_HEADERS = {
    name: {"schema": {"type": "string"}, "description": text}
    for name, text in (
        ("X-RateLimit-Limit", "Requests allowed per window for this client."),
        ("X-RateLimit-Remaining", "Requests left in the current window."),
        ("RateLimit", "IETF structured field: remaining (r) and seconds to reset (t)."),
        ("RateLimit-Policy", "IETF structured field: quota (q) per window (w) seconds."),
    )
}
_ERROR = _ref("Error")
_API_ERRORS = {
    "400": _json(_ERROR, "The body is not valid JSON; the message names line and column."),
    "401": {
        **_json(_ERROR, "Missing, invalid, expired, revoked or other-tenant token."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "403": _json(_ERROR, "The token lacks the required scope."),
    "404": _json(_ERROR, "Unknown tenant (host) or unsupported API version."),
    "408": _json(_ERROR, "The body did not arrive within the read timeout (`timeout`, s)."),
    "413": _json(_ERROR, "Body or element count over the limit named in the message."),
    "415": _json(_ERROR, "Content-Type is not application/json or the encoding is not gzip."),
    "422": _json(_ref("ValidationError"), "Every problem, by dotted path; nothing was stored."),
    "429": {
        **_json(_ERROR, "Over the client's rate limit."),
        "headers": {
            **_RATE_HEADERS,
            "Retry-After": {"schema": {"type": "integer"}},
            "X-RateLimit-Reset": {"schema": {"type": "integer"}},
        },
    },
    "503": _json(_ERROR, "The store is unavailable; retry after Retry-After seconds."),
}
_OAUTH_ERRORS = {
    "400": _json(_ref("OAuthError"), "invalid_request, unsupported_grant_type, invalid_scope."),
    "401": _json(_ref("OAuthError"), "invalid_client (WWW-Authenticate when Basic was used)."),
    "404": _json(_ERROR, "Unknown tenant (host)."),
    "408": _json(_ERROR, "The body did not arrive within the read timeout (`timeout`, s)."),
    "413": _json(_ERROR, "The body is over 64 KiB."),
    "429": _json(
        _ERROR,
        "Too many token requests from this client id or address, or too many failed "
        "authentications from this address (then even the right secret waits).",
    ),
}
_CLIENT_FORM = {
    "type": "object",
    "properties": {
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "token": {"type": "string"},
        "token_type_hint": {"type": "string"},
    },
    "required": ["token"],
    "additionalProperties": {"type": "string"},
}

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}

_SCHEMAS: dict[str, Any] = {
    "Point": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "context": {"type": "string"},
            "kpi": {"type": "string"},
            "object_type": {"type": "string"},
            "value": {"type": "number"},
            "units": _NULLABLE_STR,
            "user_id": _NULLABLE_STR,
            "location_id": _NULLABLE_STR,
            "timestamp": {"type": "integer", "description": "Epoch seconds UTC."},
            "date_from": _NULLABLE_INT,
            "date_to": _NULLABLE_INT,
        },
        "required": list(POINT_FIELDS),
    },
    "PointPage": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Point"}},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as cursor (with the same filters) for the next page.",
            },
        },
        "required": ["data", "next_cursor"],
    },
    "Series": {
        "type": "object",
        "properties": {
            "agg": {"type": "string"},
            "interval": {"type": "string"},
            "tz": {"type": "string"},
            "from": {"type": "integer", "description": "Start of the first bucket."},
            "to": {"type": "integer", "description": "End of the last bucket."},
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "group": {"type": ["object", "null"]},
                        "buckets": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "start": {"type": "integer"},
                                    "end": {"type": "integer"},
                                    "value": {"type": ["number", "null"]},
                                    "count": {"type": "integer"},
                                },
                                "required": ["start", "end", "value", "count"],
                            },
                        },
                    },
                    "required": ["group", "buckets"],
                },
            },
        },
        "required": ["agg", "interval", "tz", "from", "to", "series"],
    },
    "Leaderboard": {
        "type": "object",
        "properties": {
            "kpi": {"type": "string"},
            "by": {"type": "string", "enum": ["user_id", "location_id"]},
            "agg": {"type": "string"},
            "from": _NULLABLE_INT,
            "to": _NULLABLE_INT,
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "rank, value, count and the id under the name of `by`.",
                    "properties": {
                        "rank": {"type": "integer"},
                        "user_id": {"type": "string"},
                        "location_id": {"type": "string"},
                        "value": {"type": "number"},
                        "count": {"type": "integer"},
                    },
                    "required": ["rank", "value", "count"],
                },
            },
        },
        "required": ["kpi", "by", "agg", "from", "to", "entries"],
    },
    "Catalog": {
        "type": "object",
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "context": {"type": "string"},
                        "kpi": {"type": "string"},
                        "units": {"type": "array", "items": {"type": "string"}},
                        "points": {"type": "integer"},
                        "first_timestamp": {"type": "integer"},
                        "last_timestamp": {"type": "integer"},
                        "users": {"type": "integer"},
                        "locations": {"type": "integer"},
                    },
                },
            }
        },
        "required": ["data"],
    },
    "Error": {
        "type": "object",
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
    },
    "ValidationError": {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "example": {"data.0.elements.1.value": ["The ... field must be a number ..."]},
            },
        },
        "required": ["message", "errors"],
    },
    "OAuthError": {
        "type": "object",
        "properties": {
            "error": {
                "type": "string",
                "enum": [
                    "invalid_request",
                    "invalid_client",
                    "invalid_grant",
                    "unauthorized_client",
                    "unsupported_grant_type",
                    "invalid_scope",
                ],
            },
            "error_description": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["error", "error_description", "message"],
    },
    "TokenRequest": {
        "type": "object",
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "grant-type": {
                "type": "string",
                "enum": ["client_credentials"],
                "description": "Accepted spelling from the integration article.",
            },
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "scope": {
                "type": "string",
                "description": "Space-separated scopes the client is allowed; default: all.",
                "pattern": "^ *(kpi:write|kpi:read)( +(kpi:write|kpi:read))* *$",
                "example": "kpi:write",
            },
        },
        "anyOf": [{"required": ["grant_type"]}, {"required": ["grant-type"]}],
        # Unknown parameters are ignored (RFC 6749 §3.2), but none may be sent twice.
        "additionalProperties": {"type": "string"},
    },
    "TokenResponse": {
        "type": "object",
        "properties": {
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "access_token": {"type": "string"},
            "scope": {"type": "string"},
        },
        "required": ["token_type", "expires_in", "access_token"],
    },
    "Element": {
        "type": "object",
        "properties": {
            "id": _ID,
            "kpi": _TEXT,
            "object_type": {"type": "string", "enum": ["number"]},
            "value": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            "units": {"type": ["string", "null"], "maxLength": MAX_TEXT},
            "timestamp": _TIME,
            "date_from": _TIME,
            "date_to": _TIME,
            "data_from": {**_TIME, "description": "Alias of date_from."},
            "data_to": {**_TIME, "description": "Alias of date_to."},
        },
        "required": ["id", "kpi", "object_type", "value", "timestamp"],
    },
    "DataEntry": {
        "type": "object",
        "description": "At least one of user_id and location_id.",
        "properties": {
            "user_id": _ID,
            "location_id": _ID,
            "elements": {"type": "array", "items": _ref("Element"), "minItems": 1},
        },
        "required": ["elements"],
        "anyOf": [{"required": ["user_id"]}, {"required": ["location_id"]}],
    },
    "KpiRequest": {
        "type": "object",
        "properties": {
            "type": {**_TEXT, "description": "Registered integration identifier."},
            "version": {
                "oneOf": [
                    {"type": "string", "minLength": 1, "maxLength": MAX_VERSION},
                    {"type": "number", "description": "Accepted; a string keeps trailing zeros."},
                ],
                "example": "1.0.0",
            },
            "context": {**_TEXT, "example": "sales"},
            "data": {"type": "array", "items": _ref("DataEntry"), "minItems": 1},
        },
        "required": ["type", "version", "context", "data"],
    },
    "KpiAck": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "message": {"type": "string"},
            "batch_id": {"type": "string"},
            "received": {"type": "integer"},
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
            "unchanged": {"type": "integer"},
        },
        "required": ["status", "batch_id", "received", "created", "updated", "unchanged"],
    },
}


def _query(
    name: str, description: str, schema: dict[str, Any] | None = None, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_VERSION_PARAM = {
    "name": "api_version",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(SUPPORTED_API_VERSIONS)},
}
_READ_TIME = {
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH_SECONDS - 1},
        {
            "type": "string",
            "description": "RFC 3339 with an offset, or another form of an element time.",
        },
    ]
}
_AGG = {"type": "string", "enum": ["sum", "avg", "min", "max", "count", "last"], "default": "sum"}
_FILTERS = [
    _query("type", "Integration identifier."),
    _query("context", "Context."),
    _query("user_id", "One user."),
    _query("location_id", "One location."),
]
_RANGE = [
    _query("from", "Range start, inclusive: epoch seconds or RFC 3339.", _READ_TIME),
    _query("to", "Range end, exclusive: epoch seconds or RFC 3339.", _READ_TIME),
]
_KPIS = {"type": "array", "items": {"type": "string"}}
_READ_ERRORS = {
    k: v for k, v in _API_ERRORS.items() if k in ("401", "403", "404", "422", "429", "503")
}


def _read(summary: str, params: list[dict[str, Any]], ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": [{"bearer": ["kpi:read"]}],
            "parameters": [_VERSION_PARAM, *params],
            "responses": {"200": {**ok, "headers": _RATE_HEADERS}, **_READ_ERRORS},
        }
    }


def _form_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


def _token_link(operation: str, source: str) -> dict[str, Any]:
    """A link passing the token of this exchange (the issued one, or the one sent) on."""
    field = "access_token" if source == "$response" else "token"
    return {"operationId": operation, "requestBody": {"token": f"{source}.body#/{field}"}}


def build_spec() -> dict[str, Any]:
    client_auth: list[dict[str, list[str]]] = [{"clientBasic": []}, {}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kpihub",
            "version": __version__,
            "description": "KPI integration API. Every tenant is served on its own host, "
            "https://{tenant}.{base_domain}/. Under `kpihub serve` any request whose line and "
            "headers exceed 32 KiB (KPIHUB_MAX_HEADER_BYTES) is answered 431, and one whose "
            "head is not complete within 20 s (KPIHUB_HEADER_READ_TIMEOUT) 408, before any "
            "operation sees it. Every response carries an X-Request-ID header: "
            "the request's own when it sent a sane one (1 to 128 of A-Z a-z 0-9 -_.:=+/@), "
            "else a new one; the server's log lines of the request carry it too.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/oauth/token": {
                "post": {
                    "summary": "Get an access token (client credentials grant)",
                    "operationId": "getToken",
                    "security": client_auth,
                    "requestBody": _form_body(_ref("TokenRequest")),
                    "responses": {
                        "200": {
                            **_json(_ref("TokenResponse"), "An access token."),
                            "headers": {
                                "Cache-Control": {"schema": {"type": "string"}},
                                "Pragma": {"schema": {"type": "string"}},
                            },
                            "links": {
                                "introspectIt": _token_link("introspectToken", "$response"),
                                "revokeIt": _token_link("revokeToken", "$response"),
                            },
                        },
                        **_OAUTH_ERRORS,
                    },
                }
            },
            "/oauth/revoke": {
                "post": {
                    "summary": "Revoke one of the calling client's tokens (RFC 7009)",
                    "operationId": "revokeToken",
                    "security": client_auth,
                    "requestBody": _form_body(_CLIENT_FORM),
                    "responses": {
                        "200": {
                            "description": "Revoked or already unusable.",
                            "links": {"introspectIt": _token_link("introspectToken", "$request")},
                        },
                        **_OAUTH_ERRORS,
                    },
                }
            },
            "/oauth/introspect": {
                "post": {
                    "summary": "Introspect one of the calling client's tokens (RFC 7662)",
                    "operationId": "introspectToken",
                    "security": client_auth,
                    "requestBody": _form_body(_CLIENT_FORM),
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "description": "RFC 7662 §2.2; only active when it is not.",
                                "properties": {
                                    "active": {"type": "boolean"},
                                    "token_type": {"type": "string", "enum": ["Bearer"]},
                                    **{
                                        name: {"type": "string"}
                                        for name in ("scope", "client_id", "sub", "iss", "jti")
                                    },
                                    "env": {"type": "string", "enum": ["testing", "production"]},
                                    "aud": {
                                        "oneOf": [
                                            {"type": "string"},
                                            {"type": "array", "items": {"type": "string"}},
                                        ]
                                    },
                                    **{name: {"type": "integer"} for name in ("exp", "iat", "nbf")},
                                },
                                "required": ["active"],
                            },
                            "The token's state.",
                        ),
                        **_OAUTH_ERRORS,
                    },
                }
            },
            "/.well-known/jwks.json": {
                "get": {
                    "summary": "Public keys that verify access tokens (JWKS)",
                    "responses": {"200": _json({"type": "object"}, "The key set.")},
                }
            },
            "/.well-known/oauth-authorization-server": {
                "get": {
                    "summary": "Authorization server metadata (RFC 8414)",
                    "responses": {
                        "200": _json({"type": "object"}, "Metadata."),
                        "404": _json(_ERROR, "Unknown tenant (host)."),
                    },
                }
            },
            "/api/external/{api_version}/kpi": {
                "post": {
                    "summary": "Send a batch of KPI data points",
                    "security": [{"bearer": ["kpi:write"]}],
                    "parameters": [
                        {
                            "name": "api_version",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(SUPPORTED_API_VERSIONS)},
                        },
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        },
                        {
                            "name": "Content-Encoding",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "enum": ["gzip"]},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("KpiRequest")}},
                    },
                    "responses": {
                        "200": {
                            **_json(_ref("KpiAck"), "Stored durably."),
                            "headers": _RATE_HEADERS,
                        },
                        **_API_ERRORS,
                    },
                },
                "get": _read(
                    "Read data points (filtered, newest first, cursor pagination)",
                    [
                        _query("kpi", "KPI names (repeat the parameter).", _KPIS),
                        *_FILTERS,
                        *_RANGE,
                        _query(
                            "period",
                            "Filter on timestamp, or on date_from..date_to overlapping the range.",
                            {
                                "type": "string",
                                "enum": ["timestamp", "overlap"],
                                "default": "timestamp",
                            },
                        ),
                        _query(
                            "limit",
                            "Page size.",
                            {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
                        ),
                        _query(
                            "order",
                            "desc = newest first.",
                            {"type": "string", "enum": ["desc", "asc"], "default": "desc"},
                        ),
                        _query("cursor", "next_cursor of the previous page."),
                    ],
                    {
                        "description": "A page of points (text/csv with Accept: text/csv; "
                        "the next cursor is then in X-Next-Cursor).",
                        "content": {
                            "application/json": {"schema": _ref("PointPage")},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                )["get"]
                | {"operationId": "readPoints"},
            },
            "/api/external/{api_version}/kpi/series": _read(
                "Aggregate into calendar buckets of a time zone",
                [
                    _query("kpi", "KPI names (repeat the parameter).", _KPIS, required=True),
                    _query(
                        "interval",
                        "Bucket size; weeks start on Monday.",
                        {"type": "string", "enum": ["hour", "day", "week", "month"]},
                        required=True,
                    ),
                    _query(
                        "from",
                        "Range start (snapped down to a bucket start).",
                        _READ_TIME,
                        required=True,
                    ),
                    _query(
                        "to",
                        "Range end, exclusive (snapped up to a bucket end).",
                        _READ_TIME,
                        required=True,
                    ),
                    _query("agg", "Aggregate.", _AGG),
                    _query("tz", "IANA zone of the buckets (default: the tenant's)."),
                    _query(
                        "group_by",
                        "One series per value.",
                        {"type": "string", "enum": ["user_id", "location_id", "kpi"]},
                    ),
                    _query(
                        "fill",
                        "null: empty buckets with value null; none: omitted.",
                        {"type": "string", "enum": ["null", "none"], "default": "null"},
                    ),
                    *_FILTERS,
                ],
                _json(_ref("Series"), "At most 2500 buckets per answer."),
            ),
            "/api/external/{api_version}/kpi/leaderboard": _read(
                "Rank users or locations by an aggregate of one KPI",
                [
                    _query("kpi", "One KPI.", required=True),
                    _query(
                        "by",
                        "What to rank.",
                        {"type": "string", "enum": ["user_id", "location_id"]},
                        required=True,
                    ),
                    _query("agg", "Aggregate.", _AGG),
                    _query(
                        "limit",
                        "Entries.",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    ),
                    *_RANGE,
                    *_FILTERS,
                ],
                _json(_ref("Leaderboard"), "Competition ranking: ties share a rank (1, 1, 3)."),
            ),
            "/api/external/{api_version}/kpi/catalog": _read(
                "Every (type, context, kpi) stored, with counts",
                [],
                _json(_ref("Catalog"), "The catalog."),
            ),
            "/healthz": {
                "get": {
                    "summary": "The process answers",
                    "responses": {"200": _json({"type": "object"}, "Up.")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "The store answers",
                    "responses": {
                        "200": _json({"type": "object"}, "Ready."),
                        "503": _json({"type": "object"}, "Not ready."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI.")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of this process (text exposition format)",
                    "responses": {
                        "200": {
                            "description": "Metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "clientBasic": {"type": "http", "scheme": "basic"},
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {"kpi:write": "Send KPI data", "kpi:read": "Read KPI data"},
                        }
                    },
                },
            },
        },
    }


_SPEC = build_spec()


async def openapi_json(request: Request) -> Response:
    return JsonResponse(_SPEC)
