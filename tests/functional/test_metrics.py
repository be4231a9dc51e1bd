"""``GET /metrics`` through the real app, with rate limits in a real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpihub.settings import Settings
from tests.functional.conftest import app_on, make_settings
from tests.functional.harness import Harness, example_body
from tests.functional.scraping import Samples, sample, scrape_text
from tests.redis_server import DEAD_REDIS_URL

KPI_ROUTE = "/api/external/{api_version}/kpi"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str, prefix: str) -> Settings:
    """The ``harness`` fixture's app, with its rate limits in Redis under a fresh prefix."""
    return make_settings(
        tmp_path, database_url=database_url, redis_url=redis_url, redis_key_prefix=prefix
    )


def scrape(h: Harness) -> tuple[str, Samples]:
    """The exposition text of the harness's app and its samples by (name, labels)."""
    return scrape_text(h.http, "http://localhost/metrics")


def test_ingest_is_counted_by_route_template(harness: Harness) -> None:
    token = harness.token(harness.client())
    response = harness.post_kpi(token, example_body())
    assert response.status_code == 200, response.text
    text, samples = scrape(harness)
    assert 'kpihub_elements_ingested_total{outcome="created"} 6.0' in text
    assert sample(samples, "kpihub_elements_ingested_total", outcome="updated") == 0.0
    labels = {"route": KPI_ROUTE, "method": "POST", "status": "200"}
    assert sample(samples, "kpihub_http_requests_total", **labels) == 1.0
    assert sample(samples, "kpihub_http_requests_total", **{**labels, "route": "/oauth/token"})
    assert sample(samples, "kpihub_http_request_duration_seconds_count", route=KPI_ROUTE) == 1.0
    assert "/api/external/v1/kpi" not in text  # the template, never the raw URL

    # Sending the same batch again: every element is unchanged.
    assert harness.post_kpi(token, example_body()).status_code == 200
    _, samples = scrape(harness)
    assert sample(samples, "kpihub_elements_ingested_total", outcome="unchanged") == 6.0
    assert sample(samples, "kpihub_elements_ingested_total", outcome="created") == 6.0


def test_rejections_and_unmatched_paths(harness: Harness) -> None:
    token = harness.token(harness.client())
    bad = example_body()
    bad["data"][0]["elements"][0]["value"] = "1,5"
    assert harness.post_kpi(token, bad).status_code == 422
    assert harness.post_kpi(None, example_body()).status_code == 401
    assert harness.http.get("http://acme.localhost/no/such/path/123").status_code == 404
    _, samples = scrape(harness)
    assert sample(samples, "kpihub_batches_rejected_total", status="422") == 1.0
    assert sample(samples, "kpihub_batches_rejected_total", status="401") == 1.0
    unmatched = {"route": "(unmatched)", "method": "GET", "status": "404"}
    assert sample(samples, "kpihub_http_requests_total", **unmatched) == 1.0


def test_throttled_requests_are_counted(harness: Harness) -> None:
    token = harness.token(harness.client(rate_limit=2))
    for _ in range(2):
        assert harness.post_kpi(token, example_body()).status_code == 200
    assert harness.post_kpi(token, example_body()).status_code == 429
    _, samples = scrape(harness)
    assert sample(samples, "kpihub_ratelimited_total", limit="api") == 1.0
    assert sample(samples, "kpihub_batches_rejected_total", status="429") == 1.0
    assert sample(samples, "kpihub_ratelimit_fallbacks_total") == 0.0


def test_two_nodes_share_a_client_budget(
    tmp_path: Path, database_url: str, harness: Harness, settings: Settings
) -> None:
    """Two apps on one database and one Redis prefix: the limit holds across both."""
    a = harness
    with app_on(
        tmp_path,
        database_url,
        tenant=False,
        redis_url=settings.redis_url,
        redis_key_prefix=settings.redis_key_prefix,
    ) as b:
        token = a.token(a.client(rate_limit=3))
        assert a.post_kpi(token, example_body()).headers["X-RateLimit-Remaining"] == "2"
        assert b.post_kpi(token, example_body()).headers["X-RateLimit-Remaining"] == "1"
        assert a.post_kpi(token, example_body()).headers["X-RateLimit-Remaining"] == "0"
        refused = b.post_kpi(token, example_body())
        assert refused.status_code == 429
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        # Each app counts its own requests in its own registry.
        _, samples_b = scrape(b)
        assert sample(samples_b, "kpihub_ratelimited_total", limit="api") == 1.0
        _, samples_a = scrape(a)
        assert sample(samples_a, "kpihub_ratelimited_total", limit="api") is None


def test_redis_down_with_open_policy_still_ingests(
    tmp_path: Path, database_url: str, prefix: str
) -> None:
    with app_on(
        tmp_path,
        database_url,
        redis_url=DEAD_REDIS_URL,
        redis_key_prefix=prefix,
        redis_failure_policy="open",
    ) as h:
        token = h.token(h.client(rate_limit=2))
        first = h.post_kpi(token, example_body())
        assert first.status_code == 200, first.text
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert h.post_kpi(token, example_body()).status_code == 200
        # This node still enforces the limit from its own memory.
        assert h.post_kpi(token, example_body()).status_code == 429
        _, samples = scrape(h)
    fallbacks = sample(samples, "kpihub_ratelimit_fallbacks_total")
    # Token endpoint: per address, per client id and the address's failed
    # authentications (looked at before the secret); then three API decisions.
    assert fallbacks == 6.0
    assert sample(samples, "kpihub_elements_ingested_total", outcome="created") == 6.0


def test_redis_down_with_closed_policy_answers_503(
    tmp_path: Path, database_url: str, harness: Harness, prefix: str
) -> None:
    """One node whose Redis is unreachable, next to a healthy one on the same database."""
    healthy = harness
    token = healthy.token(healthy.client())
    with app_on(
        tmp_path,
        database_url,
        tenant=False,
        redis_url=DEAD_REDIS_URL,
        redis_key_prefix=prefix,
        redis_failure_policy="closed",
    ) as cut_off:
        refused = cut_off.post_kpi(token, example_body())
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "rate-limit store cannot be reached" in refused.json()["message"]
        token_refused = cut_off.token_response(cut_off.client())
        assert token_refused.status_code == 503
        assert "Retry-After" in token_refused.headers
        _, samples = scrape(cut_off)
        assert sample(samples, "kpihub_batches_rejected_total", status="503") == 1.0
        assert sample(samples, "kpihub_ratelimit_fallbacks_total") == 0.0
    assert healthy.post_kpi(token, example_body()).status_code == 200
