"""The OpenAPI 3.1 description of every endpoint and error shape, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kpihub import __version__
from kpihub.http.responses import JsonResponse
from kpihub.settings import SUPPORTED_API_VERSIONS

_ID = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "integer"}]}
_TIME = {
    "description": "Epoch seconds (number or numeric string), 'Y-m-d H:i:s' in the tenant's "
    "time zone, or RFC 3339 with an offset.",
    "oneOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}],
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
    "429": _json(_ERROR, "Too many token requests from this client id or address."),
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
}

_SCHEMAS: dict[str, Any] = {
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
            "scope": {"type": "string", "example": "kpi:write"},
        },
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
            "kpi": {"type": "string"},
            "object_type": {"type": "string", "enum": ["number"]},
            "value": {"oneOf": [{"type": "number"}, {"type": "string"}]},
            "units": {"type": ["string", "null"]},
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
    },
    "KpiRequest": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "Registered integration identifier."},
            "version": {"type": "string", "example": "1.0.0"},
            "context": {"type": "string", "example": "sales"},
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


def _form_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


def build_spec() -> dict[str, Any]:
    client_auth: list[dict[str, list[str]]] = [{"clientBasic": []}, {}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kpihub",
            "version": __version__,
            "description": "KPI integration API. Every tenant is served on its own host, "
            "https://{tenant}.{base_domain}/.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/oauth/token": {
                "post": {
                    "summary": "Get an access token (client credentials grant)",
                    "security": client_auth,
                    "requestBody": _form_body(_ref("TokenRequest")),
                    "responses": {
                        "200": {
                            **_json(_ref("TokenResponse"), "An access token."),
                            "headers": {
                                "Cache-Control": {"schema": {"type": "string"}},
                                "Pragma": {"schema": {"type": "string"}},
                            },
                        },
                        **_OAUTH_ERRORS,
                    },
                }
            },
            "/oauth/revoke": {
                "post": {
                    "summary": "Revoke one of the calling client's tokens (RFC 7009)",
                    "security": client_auth,
                    "requestBody": _form_body(_CLIENT_FORM),
                    "responses": {
                        "200": {"description": "Revoked or already unusable."},
                        **_OAUTH_ERRORS,
                    },
                }
            },
            "/oauth/introspect": {
                "post": {
                    "summary": "Introspect one of the calling client's tokens (RFC 7662)",
                    "security": client_auth,
                    "requestBody": _form_body(_CLIENT_FORM),
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"active": {"type": "boolean"}},
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
                            "schema": {"type": "string", "maxLength": 255},
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
                }
            },
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
