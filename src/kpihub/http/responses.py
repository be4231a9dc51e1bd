"""JSON responses encoded with msgspec (fast, and strict about what it emits)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


def json_bytes(content: Any) -> bytes:
    return _encoder.encode(content)


class JsonResponse(Response):
    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(json_bytes(content), status_code, headers)


def raw_json(
    body: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(body, status_code, headers, media_type="application/json")
