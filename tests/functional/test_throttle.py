"""API throttling: 180 requests per window per client by default, adjustable per client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functional.conftest import app_on
from tests.functional.harness import Harness, example_body, one_element

WINDOW = 6  # seconds: 181 requests must fit in one window even on a busy machine


@pytest.fixture
def fast(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with app_on(tmp_path, database_url, rate_limit_window=WINDOW) as h:
        yield h


def assert_limited(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    headers = response.headers
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    reset = int(headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + WINDOW + 1
    assert headers["X-RateLimit-Limit"] == str(limit)
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["RateLimit-Policy"] == f'"api";q={limit};w={WINDOW}'
    assert headers["RateLimit"].startswith('"api";r=0;t=')
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["message"]


def wait_for_reset(response: httpx.Response) -> None:
    time.sleep(max(0.0, int(response.headers["X-RateLimit-Reset"]) - time.time()) + 0.05)


def test_default_limit_then_window_resets(fast: Harness) -> None:
    token = fast.token(fast.client())
    body = one_element()  # small: the point is the count, not the data
    started = time.monotonic()
    responses = [fast.post_kpi(token, body) for _ in range(180)]
    limited = fast.post_kpi(token, body)
    # The test is only meaningful if all 181 fitted in one window.
    assert time.monotonic() - started < WINDOW, f"too slow to test a {WINDOW}-second window"
    for sent, response in enumerate(responses, start=1):
        assert response.status_code == 200, (sent, response.text)
        assert response.headers["X-RateLimit-Limit"] == "180"
        assert response.headers["X-RateLimit-Remaining"] == str(180 - sent)
    assert_limited(limited, 180)
    wait_for_reset(limited)
    again = fast.post_kpi(token, body)
    assert again.status_code == 200, again.text
    assert again.headers["X-RateLimit-Remaining"] == "179"


def test_per_client_override(fast: Harness) -> None:
    slow = fast.client(rate_limit=5)
    other = fast.client()
    token = fast.token(slow)
    for sent in range(1, 6):
        response = fast.post_kpi(token, example_body())
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Remaining"] == str(5 - sent)
        assert response.headers["RateLimit-Policy"] == f'"api";q=5;w={WINDOW}'
    limited = fast.post_kpi(token, example_body())
    assert_limited(limited, 5)
    # A new token for the same client does not reset its budget...
    assert fast.post_kpi(fast.token(slow), example_body()).status_code == 429
    # ...and other clients are not affected.
    response = fast.post_kpi(fast.token(other), example_body())
    assert response.status_code == 200, response.text
    assert response.headers["X-RateLimit-Limit"] == "180"
    wait_for_reset(limited)
    assert fast.post_kpi(token, example_body()).status_code == 200


def test_rejected_requests_carry_the_headers_and_count(fast: Harness) -> None:
    token = fast.token(fast.client(rate_limit=3))
    body = example_body()
    body["data"][0]["elements"][0]["value"] = "NaN"
    response = fast.post_kpi(token, body)
    assert response.status_code == 422
    assert response.headers["X-RateLimit-Remaining"] == "2"
    read_only = fast.token(fast.client(rate_limit=3), scope="kpi:read")
    forbidden = fast.post_kpi(read_only, example_body())
    assert forbidden.status_code == 403
    assert forbidden.headers["X-RateLimit-Limit"] == "3"
    assert forbidden.headers["X-RateLimit-Remaining"] == "2"
