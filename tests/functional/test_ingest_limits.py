"""Limits and media over HTTP: 413, 415, 400 with line and column, 404 and 405."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kpihub.app import create_app
from kpihub.settings import SUPPORTED_API_VERSIONS, Settings
from tests.functional.conftest import make_settings
from tests.functional.harness import Harness, example_body

BODY_LIMIT = 4096
ELEMENT_LIMIT = 6  # the article's example is exactly at the limit


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        max_body_bytes=BODY_LIMIT,
        max_elements=ELEMENT_LIMIT,
    )


def stored_points(harness: Harness) -> int:
    count: int = harness.scalar("SELECT COUNT(*) FROM data_points")
    return count


def padded(size: int) -> bytes:
    """The article's example as exactly ``size`` bytes of valid JSON (trailing whitespace)."""
    raw = json.dumps(example_body()).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def gzip_bomb(inflated: int) -> bytes:
    """A valid gzip stream of ``inflated`` NUL bytes, about a thousandth of that on the wire."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [z.compress(block) for _ in range(inflated >> 20)]
    return b"".join(parts) + z.flush()


# -- body size ---------------------------------------------------------------------------


def test_body_at_the_limit_is_accepted(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, content=padded(BODY_LIMIT))
    assert response.status_code == 200, response.text
    assert stored_points(harness) == 6


def test_body_over_the_limit_is_413_naming_it(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, content=padded(BODY_LIMIT + 1))
    assert response.status_code == 413, response.text
    doc = response.json()
    assert str(BODY_LIMIT) in doc["message"]
    assert doc["limit"] == BODY_LIMIT
    assert stored_points(harness) == 0


def test_chunked_body_over_the_limit_is_413(harness: Harness, token: str) -> None:
    # No Content-Length: the limit must hold while the body streams in.
    raw = padded(BODY_LIMIT * 3)
    chunks = iter([raw[i : i + 1000] for i in range(0, len(raw), 1000)])
    response = harness.http.post(
        harness.url("acme", "/api/external/v1/kpi"),
        content=chunks,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["limit"] == BODY_LIMIT
    assert stored_points(harness) == 0


def test_gzip_body_is_limited_after_decompression(harness: Harness, token: str) -> None:
    compressed = gzip.compress(padded(BODY_LIMIT + 1))
    assert len(compressed) < BODY_LIMIT
    response = harness.post_kpi(token, content=compressed, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413, response.text
    assert "after decompression" in response.json()["message"]
    ok = harness.post_kpi(
        token, content=gzip.compress(padded(BODY_LIMIT)), headers={"Content-Encoding": "gzip"}
    )
    assert ok.status_code == 200, ok.text


def test_gzip_bomb_is_413_with_bounded_memory(harness: Harness, token: str) -> None:
    bomb = gzip_bomb(32 << 20)
    assert len(bomb) < 64 << 10
    tracemalloc.start()
    try:
        response = harness.post_kpi(token, content=bomb, headers={"Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.text
    assert response.json()["limit"] == BODY_LIMIT
    # Inflating the bomb would take 32 MiB; a bounded reader needs a few KiB of it.
    assert peak < 4 << 20, peak
    assert stored_points(harness) == 0


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (lambda gz: gz[: len(gz) // 2], "truncated"),
        (lambda gz: b"not gzip at all", "not valid gzip"),
        (lambda gz: gz + b"garbage", "not valid gzip"),
        (lambda gz: b"", "empty"),
    ],
)
def test_corrupt_gzip_is_400(
    harness: Harness,
    token: str,
    mangle: object,
    says: str,
) -> None:
    assert callable(mangle)
    body = mangle(gzip.compress(json.dumps(example_body()).encode()))
    response = harness.post_kpi(token, content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400, response.text
    assert says in response.json()["message"]
    assert stored_points(harness) == 0


def test_unsupported_content_encoding_is_415(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, content=b"{}", headers={"Content-Encoding": "br"})
    assert response.status_code == 415, response.text
    assert "gzip" in response.json()["message"]


# -- element count -------------------------------------------------------------------


def test_elements_at_the_limit_are_accepted(harness: Harness, token: str) -> None:
    assert harness.post_kpi(token, example_body()).status_code == 200
    assert stored_points(harness) == ELEMENT_LIMIT


def test_too_many_elements_is_413_naming_the_limit(harness: Harness, token: str) -> None:
    body = example_body()
    extra = dict(body["data"][2]["elements"][1], id=7)
    body["data"][2]["elements"].append(extra)
    response = harness.post_kpi(token, body)
    assert response.status_code == 413, response.text
    doc = response.json()
    assert doc["limit"] == ELEMENT_LIMIT
    assert f"the limit is {ELEMENT_LIMIT}" in doc["message"]
    assert stored_points(harness) == 0


# -- media type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_wrong_content_type_is_415(harness: Harness, token: str, content_type: str) -> None:
    response = harness.post_kpi(
        token,
        content=json.dumps(example_body()).encode(),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["message"]
    assert stored_points(harness) == 0


def test_json_suffix_media_type_is_accepted(harness: Harness, token: str) -> None:
    response = harness.post_kpi(
        token,
        content=json.dumps(example_body()).encode(),
        headers={"Content-Type": "application/vnd.kpihub+json"},
    )
    assert response.status_code == 200, response.text


# -- malformed bodies ----------------------------------------------------------------


def test_malformed_json_names_line_and_column(harness: Harness, token: str) -> None:
    body = b'{\n  "type": "acme-pos",\n  "version": "1.0.0" "context": "sales",\n  "data": []\n}'
    response = harness.post_kpi(token, content=body)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert "Expecting ',' delimiter at line 3 column 22" in doc["message"]
    assert (doc["line"], doc["column"]) == (3, 22)
    assert stored_points(harness) == 0


def test_truncated_json_is_400(harness: Harness, token: str) -> None:
    raw = json.dumps(example_body(), indent=2).encode()
    response = harness.post_kpi(token, content=raw[:-10])
    assert response.status_code == 400, response.text
    assert "line" in response.json()["message"]


def test_empty_body_is_400(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, content=b"")
    assert response.status_code == 400, response.text
    assert "line 1 column 1" in response.json()["message"]


def test_invalid_utf8_is_400(harness: Harness, token: str) -> None:
    body = json.dumps(example_body(), indent=2).encode().replace(b"Eur", b"\xff\xfeur")
    response = harness.post_kpi(token, content=body)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert "UTF-8" in doc["message"]
    line = body[: body.index(b"\xff")].count(b"\n") + 1
    assert doc["line"] == line
    assert stored_points(harness) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literal_is_400(harness: Harness, token: str, literal: str) -> None:
    # The same word inside a string earlier must not be taken for the bad literal.
    body = (
        '{"type": "acme-pos", "version": "1.0.0", "context": "sales",\n'
        ' "data": [{"user_id": "Infinity NaN", "elements": [{"id": 1, "kpi": "k",\n'
        f'  "object_type": "number", "value": {literal}, "timestamp": 1568120963}}]}}]}}'
    ).encode()
    response = harness.post_kpi(token, content=body)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert literal in doc["message"]
    assert (doc["line"], doc["column"]) == (3, 37)
    assert stored_points(harness) == 0


def test_half_a_surrogate_pair_is_400(harness: Harness, token: str) -> None:
    # Valid JSON grammar, but no Unicode text: it cannot be stored, so it must not
    # get past the reader (it used to fail inside the store with a 500).
    raw = json.dumps(example_body(), indent=2).replace('"Eur"', '"\\ud800 Eur"').encode()
    response = harness.post_kpi(token, content=raw)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert "\\ud800" in doc["message"] and "surrogate" in doc["message"]
    assert doc["line"] == raw[: raw.index(b"\\ud800")].count(b"\n") + 1
    assert stored_points(harness) == 0


def test_nul_character_is_400(harness: Harness, token: str) -> None:
    # Valid JSON, but PostgreSQL cannot store U+0000 in text: refused on every backend
    # alike, by the reader (on PostgreSQL it used to fail inside the store with a 500).
    raw = json.dumps(example_body(), indent=2).replace('"Eur"', '"E\\u0000ur"').encode()
    assert b"\\u0000" in raw
    response = harness.post_kpi(token, content=raw)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert "\\u0000" in doc["message"] and "NUL" in doc["message"]
    offset = raw.index(b"\\u0000")
    assert doc["line"] == raw[:offset].count(b"\n") + 1
    assert doc["column"] == offset - raw.rfind(b"\n", 0, offset)
    assert stored_points(harness) == 0
    # An escaped backslash before "u0000" is text, not NUL.
    text = json.dumps(example_body()).replace('"Eur"', '"\\\\u0000"').encode()
    assert harness.post_kpi(token, content=text).status_code == 200
    assert {r[0] for r in harness.rows("SELECT units FROM data_points")} >= {"\\u0000"}


def test_escaped_surrogate_pairs_and_backslashes_are_text(harness: Harness, token: str) -> None:
    raw = (
        json.dumps(example_body())
        .replace('"Eur"', '"\\ud83d\\udcb6"')
        .replace('"Points"', '"\\\\ud800"')
        .encode()
    )
    response = harness.post_kpi(token, content=raw)
    assert response.status_code == 200, response.text
    units = {r[0] for r in harness.rows("SELECT units FROM data_points")}
    assert {"\U0001f4b6", "\\ud800"} <= units


def test_integer_with_too_many_digits_is_400(tmp_path: Path, database_url: str) -> None:
    # Python's int() refuses more than 4300 digits with a ValueError (it was a 500).
    body = json.dumps(example_body()).replace('"id": 4', '"id": ' + "9" * 5000).encode()
    roomy_settings = make_settings(tmp_path / "roomy", database_url=database_url)
    with TestClient(create_app(roomy_settings)) as client:
        roomy = Harness(client)
        roomy.tenant()
        roomy.integration()
        response = roomy.post_kpi(roomy.token(roomy.client()), content=body)
    assert response.status_code == 400, response.text
    doc = response.json()
    assert "too many digits" in doc["message"]
    assert doc["column"] == body.index(b"9999") + 1


def test_deeply_nested_body_is_400(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, content=b"[" * 4000)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["message"]


def test_malformed_body_is_recorded_for_the_debugger(harness: Harness, token: str) -> None:
    body = b'{"type": "acme-pos",,}'
    response = harness.post_kpi(token, content=body)
    assert response.status_code == 400
    (row,) = harness.rows("SELECT http_status, raw_body, message FROM batches")
    assert row[0] == 400
    assert zlib.decompress(row[1]) == body
    assert row[2] == response.json()["message"]


# -- routing -------------------------------------------------------------------------


def test_unknown_api_version_is_404_naming_the_supported_ones(harness: Harness, token: str) -> None:
    assert SUPPORTED_API_VERSIONS[0] == "v1"
    response = harness.post_kpi(token, example_body(), version="v2")
    assert response.status_code == 404, response.text
    message = response.json()["message"]
    assert "'v2'" in message and "v1" in message
    assert stored_points(harness) == 0


def test_another_method_on_the_endpoint_is_405_json(harness: Harness, token: str) -> None:
    # GET reads points (the query API); POST ingests; anything else is a 405.
    response = harness.http.delete(
        harness.url("acme", "/api/external/v1/kpi"),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/json")
    assert "DELETE" in response.json()["message"]
    assert "POST" in response.headers["allow"]


def test_default_limits_are_the_documented_ones(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    assert (settings.max_body_bytes, settings.max_elements) == (10 * 1024 * 1024, 10_000)
    with TestClient(create_app(settings)):
        pass
