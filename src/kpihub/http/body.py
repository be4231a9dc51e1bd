"""Reading request bodies: size bounds, gzip, media type, JSON with line and column."""

from __future__ import annotations

import json
import zlib

import msgspec
from starlette.requests import Request

from kpihub.errors import MalformedBody, MalformedJson, PayloadTooLarge, UnsupportedMediaType

_decoder = msgspec.json.Decoder()


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the limit of {limit} bytes (after decompression). "
        "Split the data into several requests.",
        limit=limit,
    )


def _corrupt_gzip(exc: zlib.error) -> MalformedBody:
    return MalformedBody(
        f"The body is not valid gzip ({exc}) although Content-Encoding: gzip was sent; "
        "compress it with gzip or drop the header."
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed when ``Content-Encoding: gzip``, never more than ``limit`` bytes."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise UnsupportedMediaType(
            f"Content-Encoding '{encoding}' is not supported. Send the body plain or with "
            "Content-Encoding: gzip."
        )
    declared = request.headers.get("content-length")
    if encoding in ("identity", "") and declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
    async for chunk in request.stream():
        if inflater is not None:
            # max_length bounds memory even for a gzip bomb.
            try:
                chunk = inflater.decompress(chunk, limit + 1 - size)
            except zlib.error as exc:
                raise _corrupt_gzip(exc) from None
            if inflater.unconsumed_tail:
                raise _too_large(limit)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    if inflater is not None:
        try:
            tail = inflater.flush()
        except zlib.error as exc:
            raise _corrupt_gzip(exc) from None
        if not inflater.eof:
            raise MalformedBody(
                "The gzip body is truncated (Content-Encoding: gzip); send a complete gzip stream."
            )
        size += len(tail)
        if size > limit:
            raise _too_large(limit)
        chunks.append(tail)
    return b"".join(chunks)


class _NonJsonConstant(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _reject_constant(literal: str) -> object:
    raise _NonJsonConstant(literal)


def decode_json(body: bytes) -> object:
    """Decode JSON fast; on failure, say where (line and column) as ``json`` does."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError:
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        column = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MalformedJson(
            f"The request body is not valid UTF-8 at line {line} column {column}. "
            "Send JSON encoded as UTF-8.",
            line=line,
            column=column,
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except _NonJsonConstant as exc:
        offset = text.find(exc.literal)
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise MalformedJson(
            f"The request body is not valid JSON: {exc.literal} is not a JSON value at line "
            f"{line} column {column}. Send finite numbers only.",
            line=line,
            column=column,
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}.",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except RecursionError:
        raise MalformedJson(
            "The request body is nested too deeply to be KPI data.", line=1, column=1
        ) from None
