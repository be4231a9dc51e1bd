"""Reading request bodies: size bounds, gzip, media type, JSON with line and column."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from starlette.requests import Request

from kpihub.errors import (
    BodyTimeout,
    MalformedBody,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
)

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


class _Gunzip:
    """Inflates a gzip stream of one or more members, never past ``limit`` bytes.

    RFC 1952 §2.2: a gzip file is a series of members (``cat a.gz b.gz`` is
    one). Stopping after the first member would silently drop the rest of
    the body, so every member is read.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.size = 0
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        while data:
            if self._member.eof:
                # Trailing NUL padding after a member is tolerated, as gzip(1) does.
                data = data.lstrip(b"\0")
                if not data:
                    break
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._started = True
            # max_length bounds memory even for a gzip bomb; it is never 0
            # (which would mean unbounded) because size <= limit here.
            try:
                piece = self._member.decompress(data, self._limit + 1 - self.size)
            except zlib.error as exc:
                raise _corrupt_gzip(exc) from None
            self.size += len(piece)
            if self.size > self._limit or self._member.unconsumed_tail:
                raise _too_large(self._limit)
            out.append(piece)
            data = self._member.unused_data if self._member.eof else b""
        return out

    def finish(self) -> None:
        """Raise unless the stream ended exactly at the end of a member."""
        if not self._member.eof:
            if self._started:
                raise MalformedBody(
                    "The gzip body is truncated (Content-Encoding: gzip); send a complete "
                    "gzip stream."
                )
            raise MalformedBody(
                "The body is empty although Content-Encoding: gzip was sent; send a gzip "
                "stream or drop the header."
            )


@asynccontextmanager
async def body_deadline(seconds: float) -> AsyncIterator[None]:
    """Raise :class:`BodyTimeout` when the block (reading a body) takes over ``seconds``.

    One deadline for the whole body, not an idle timeout between chunks: a client
    trickling a byte a second would reset an idle timer forever.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise BodyTimeout(
            f"The request body did not arrive within {seconds:g} seconds. Send the whole "
            "body at once, or smaller bodies over a slow link.",
            timeout=seconds,
        ) from None


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The body, decompressed when ``Content-Encoding: gzip``, never more than ``limit`` bytes,
    received within ``seconds``."""
    async with body_deadline(seconds):
        return await _read_body(request, limit)


async def _read_body(request: Request, limit: int) -> bytes:
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
    if encoding in ("gzip", "x-gzip"):
        gunzip = _Gunzip(limit)
        async for chunk in request.stream():
            chunks += gunzip.feed(chunk)
        gunzip.finish()
        return b"".join(chunks)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class _NonJsonConstant(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _reject_constant(literal: str) -> object:
    raise _NonJsonConstant(literal)


# A JSON string token, so that searches below skip what is inside strings.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
# Inside strings: an escaped backslash, a valid surrogate pair, or (group 1) half a pair.
_SURROGATE_ESCAPES = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
)

# Inside strings: an escaped backslash, or (group 1) the escape of U+0000.
_NUL_ESCAPES = re.compile(r"\\\\|(\\u0000)")


def _outside_strings(text: str, target: str) -> int:
    """Offset of the first match of ``target`` that is not inside a JSON string, or 0."""
    for match in re.finditer(f"{_STRING}|({target})", text):
        if match.group(1) is not None:
            return match.start(1)
    return 0


def _malformed(text: str, offset: int, problem: str, fix: str) -> MalformedJson:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return MalformedJson(
        f"The request body is not valid JSON: {problem} at line {line} column {column}. {fix}",
        line=line,
        column=column,
    )


def _refuse_nul(body: bytes) -> None:
    """U+0000 ("\\u0000") is valid JSON but no text PostgreSQL can store: refuse it on
    every backend, so a batch is accepted or refused the same wherever it is stored."""
    if b"\\u0000" not in body:  # the usual case costs one substring search
        return
    text = body.decode("utf-8", errors="replace")
    for match in _NUL_ESCAPES.finditer(text):
        if match.group(1) is not None:
            raise _malformed(
                text,
                match.start(1),
                "\\u0000 (the NUL character) cannot be stored",
                "Remove NUL characters from the text.",
            )


def decode_json(body: bytes) -> object:
    """Decode JSON fast; on failure, say where (line and column) as ``json`` does."""
    try:
        doc = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # msgspec says where only sometimes (and raises UnicodeDecodeError for bad
        # UTF-8 inside strings); the slow path below explains every failure.
        pass
    else:
        _refuse_nul(body)
        return doc
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
        doc = json.loads(text, parse_constant=_reject_constant)
    except _NonJsonConstant as exc:
        # The same word inside a string earlier on must not be taken for it.
        offset = _outside_strings(text, re.escape(exc.literal))
        raise _malformed(
            text, offset, f"{exc.literal} is not a JSON value", "Send finite numbers only."
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}.",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except ValueError:
        # int() refuses more digits than sys.get_int_max_str_digits(); no KPI needs them.
        raise _malformed(
            text,
            _outside_strings(text, f"-?[0-9]{{{sys.get_int_max_str_digits() + 1},}}"),
            "a number has too many digits",
            "Send numbers that fit a 64-bit float.",
        ) from None
    except RecursionError:
        raise MalformedJson(
            "The request body is nested too deeply to be KPI data.", line=1, column=1
        ) from None
    # json accepted what msgspec refused. Half a UTF-16 surrogate pair ("\\ud800")
    # is no Unicode text and cannot be stored, so it is refused here too; numbers
    # beyond the float range (1e400 -> inf) pass on, to be rejected per field.
    for match in _SURROGATE_ESCAPES.finditer(text):
        if match.group(1) is not None:
            raise _malformed(
                text,
                match.start(1),
                f"{match.group(1)} is half of a UTF-16 surrogate pair",
                "Escape characters outside the BMP as a full pair, or send them as UTF-8.",
            )
    _refuse_nul(body)
    return doc
