"""What the metrics and the logs say happened, through the real app on each backend.

Batch sizes, commit latency, authentication failures by reason, store errors (a
PostgreSQL database dropped under the app; a SQLite database locked by another
process), ``X-Request-ID`` on every answer, and the JSON access-log lines.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from kpihub.app import create_app
from kpihub.settings import Settings
from kpihub.storage.urls import scheme
from tests import databases
from tests.functional.conftest import make_settings
from tests.functional.harness import Harness, example_body, one_element, open_harness
from tests.functional.scraping import Samples, sample, scrape_text, value
from tests.functional.tokens import claims_for, craft
from tests.functional.web_support import add_user, login_response
from tests.logs_support import access_lines, captured_json_log

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
KPI_ROUTE = "/api/external/{api_version}/kpi"


def scrape(h: Harness) -> Samples:
    return scrape_text(h.http, "http://localhost/metrics")[1]


def backend_label(database_url: str) -> str:
    return "sqlite" if scheme(database_url) == "sqlite" else "postgresql"


def store_errors(samples: Samples, backend: str) -> float:
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "kpihub_store_errors_total" and ("backend", backend) in labels
    )


# -- batch sizes and commit latency -----------------------------------------------------


def test_batch_sizes_and_commit_latency(harness: Harness, database_url: str) -> None:
    token = harness.token(harness.client())
    before = scrape(harness)
    backend = backend_label(database_url)
    commits_before = value(before, "kpihub_store_commit_duration_seconds_count", backend=backend)

    assert harness.post_kpi(token, example_body()).status_code == 200  # 6 elements
    assert harness.post_kpi(token, one_element()).status_code == 200
    bad = one_element(value="1,5")
    assert harness.post_kpi(token, bad).status_code == 422  # not a batch that was stored

    after = scrape(harness)
    assert sample(after, "kpihub_batch_elements_count") == 2.0
    assert sample(after, "kpihub_batch_elements_sum") == 7.0
    assert sample(after, "kpihub_batch_elements_bucket", le="1.0") == 1.0
    assert sample(after, "kpihub_batch_elements_bucket", le="10.0") == 2.0
    # Each accepted batch committed at least once (SQLite may group writes).
    commits = value(after, "kpihub_store_commit_duration_seconds_count", backend=backend)
    assert commits >= commits_before + 1
    assert value(after, "kpihub_store_commit_duration_seconds_sum", backend=backend) > 0
    other = "postgresql" if backend == "sqlite" else "sqlite"
    assert sample(after, "kpihub_store_commit_duration_seconds_count", backend=other) is None
    assert store_errors(after, backend) == 0


# -- authentication failures by reason ---------------------------------------------------


def test_auth_failures_are_counted_by_reason(harness: Harness) -> None:
    creds = harness.client()
    token = harness.token(creds)
    now = int(time.time())
    expired = craft(harness, claims_for(creds, iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    forged = craft(harness, claims_for(creds), key=Ed25519PrivateKey.generate())
    harness.tenant("other")
    their_token = harness.token(harness.client("other"))
    read_only = harness.token(creds, scope="kpi:read")

    assert harness.post_kpi(None, example_body()).status_code == 401
    assert harness.post_kpi("not-a-jwt", example_body()).status_code == 401
    assert harness.post_kpi(forged, example_body()).status_code == 401
    assert harness.post_kpi(expired, example_body()).status_code == 401
    assert harness.post_kpi(expired, example_body()).status_code == 401
    assert harness.post_kpi(their_token, example_body()).status_code == 401
    assert harness.post_kpi(read_only, example_body()).status_code == 403
    wrong = harness.token_response(replace(creds, client_secret="x" * 43))
    assert wrong.status_code == 401
    unknown = harness.token_response(replace(creds, client_id="kh_nobody"))
    assert unknown.status_code == 401
    assert harness.post_kpi(token, example_body()).status_code == 200

    samples = scrape(harness)
    expected = {
        ("bearer", "missing"): 1.0,
        ("bearer", "malformed"): 1.0,
        ("bearer", "bad_signature"): 1.0,
        ("bearer", "expired"): 2.0,
        ("bearer", "wrong_tenant"): 1.0,
        ("bearer", "insufficient_scope"): 1.0,
        ("client_secret", "wrong_secret"): 1.0,
        ("client_secret", "unknown_client"): 1.0,
    }
    found = {
        (dict(labels)["credential"], dict(labels)["reason"]): v
        for (name, labels), v in samples.items()
        if name == "kpihub_auth_failures_total"
    }
    assert found == expected


def test_dashboard_sign_in_failures_are_counted_by_reason(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    assert login_response(harness, "ada@example.com", "wrong password").status_code == 401
    assert login_response(harness, "nobody@example.com").status_code == 401
    assert login_response(harness, "ada@example.com").status_code == 303
    samples = scrape(harness)
    for reason in ("wrong_password", "unknown_user"):
        labels = {"credential": "dashboard", "reason": reason}
        assert sample(samples, "kpihub_auth_failures_total", **labels) == 1.0


# -- store errors -----------------------------------------------------------------------


@pytest.fixture
def quick_settings(tmp_path: Path, database_url: str) -> Settings:
    """The app gives up on a busy or unreachable store after half a second."""
    return make_settings(tmp_path, database_url=database_url, database_timeout=0.5)


def test_store_errors_are_counted_logged_and_answered_503(
    quick_settings: Settings, database_url: str
) -> None:
    backend = backend_label(database_url)
    with open_harness(quick_settings) as h:
        token = h.token(h.client())
        assert h.post_kpi(token, example_body()).status_code == 200
        fresh = one_element(id="sent-while-broken")
        with captured_json_log(quick_settings) as log, databases.broken(database_url):
            refused = h.post_kpi(token, fresh, headers={"X-Request-ID": "store-down-1"})
            samples = scrape(h)  # /metrics needs no store
        assert refused.status_code == 503, refused.text
        assert refused.headers["x-request-id"] == "store-down-1"
        assert int(refused.headers["retry-after"]) >= 1
        assert store_errors(samples, backend) >= 1
        if backend == "sqlite":
            # The batch's write; a refusal for want of a store is not recorded for the
            # debugger (that write would wait for the same store again).
            locked = sample(
                samples, "kpihub_store_errors_total", backend="sqlite", error="OperationalError"
            )
            assert locked == 1.0
        assert value(samples, "kpihub_batches_rejected_total", status="503") == 1.0

        # The error line logged while the request ran carries its id, as its access line.
        records = log.records()
        errors = [r for r in records if r["level"] == "error" and r["logger"] == "kpihub.http"]
        assert errors, log.text
        assert all(r["request_id"] == "store-down-1" for r in errors)
        assert any("store unavailable" in r["event"] for r in errors)
        (line,) = access_lines(records, "store-down-1")
        assert line["status"] == 503
        assert line["error"] == "StoreUnavailable"

        if backend == "sqlite":
            # The lock is gone: the refused batch was not half-written, and goes in now.
            retried = h.post_kpi(token, fresh)
            assert retried.status_code == 200, retried.text
            assert retried.json()["created"] == 1


# -- X-Request-ID -------------------------------------------------------------------------


def test_request_id_is_echoed_on_every_answer(harness: Harness) -> None:
    token = harness.token(harness.client(rate_limit=1))
    sent = {"X-Request-ID": "vendor-7f3a:retry=2"}
    answers = [
        harness.post_kpi(token, example_body(), headers=sent),  # 200
        harness.post_kpi(token, example_body(), headers=sent),  # 429
        harness.post_kpi(None, example_body(), headers=sent),  # 401
        harness.post_kpi(token, content=b"{", headers=sent),  # 429 before the body
        harness.http.get("http://acme.localhost/no/such/path", headers=sent),  # 404
        harness.http.get("http://nobody.localhost/oauth/token", headers=sent),  # 404, 405...
    ]
    assert [a.status_code for a in answers][:3] == [200, 429, 401]
    for answer in answers:
        assert answer.headers.get_list("x-request-id") == ["vendor-7f3a:retry=2"], answer

    generated = harness.http.get("http://localhost/healthz")
    assert GENERATED_ID.fullmatch(generated.headers["x-request-id"])
    again = harness.http.get("http://localhost/healthz")
    assert again.headers["x-request-id"] != generated.headers["x-request-id"]


def test_an_unsafe_request_id_is_replaced(harness: Harness) -> None:
    unsafe: list[str | bytes] = [
        "has space",
        "x" * 129,
        'quo"te',
        "semi;colon",
        "caf\u00e9".encode(),
        "<script>",
        "",
    ]
    for sent in unsafe:
        answer = harness.http.get("http://localhost/healthz", headers={"X-Request-ID": sent})
        assert GENERATED_ID.fullmatch(answer.headers["x-request-id"]), sent


def test_an_unhandled_error_answers_500_with_the_request_id(settings: Settings) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = create_app(settings)
    app.router.routes.append(Route("/boom", boom))
    with (
        captured_json_log(settings) as log,
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        answer = client.get("http://localhost/boom", headers={"X-Request-ID": "bug-1"})
    assert answer.status_code == 500
    assert answer.json() == {"message": "Server Error"}
    assert answer.headers["x-request-id"] == "bug-1"
    records = log.records()
    (line,) = access_lines(records, "bug-1")
    assert line["status"] == 500
    assert line["route"] == "/boom"
    assert line["error"] == "RuntimeError"
    (failure,) = [r for r in records if r["level"] == "error"]
    assert failure["request_id"] == "bug-1"
    assert "RuntimeError: a bug" in failure["exception"]


# -- the access log -------------------------------------------------------------------------


def test_a_rejected_batch_logs_one_line_with_the_sent_request_id(settings: Settings) -> None:
    with captured_json_log(settings) as log, open_harness(settings) as h:
        creds = h.client()
        token = h.token(creds)
        refused = h.post_kpi(token, one_element(value="1,5"), headers={"X-Request-ID": "v-422"})
        assert refused.status_code == 422
        assert refused.headers["x-request-id"] == "v-422"
        recorded = h.scalar("SELECT id FROM batches WHERE http_status = 422")
        samples = scrape(h)
    records = log.records()
    (line,) = access_lines(records, "v-422")
    assert line["level"] == "info"
    assert line["event"] == "request"
    assert {k: line[k] for k in ("method", "path", "route", "status")} == {
        "method": "POST",
        "path": "/api/external/v1/kpi",
        "route": KPI_ROUTE,
        "status": 422,
    }
    assert line["tenant"] == "acme"
    assert line["client_id"] == creds.client_id
    assert line["environment"] == "testing"
    assert line["elements"] == 1
    assert line["batch_id"] == recorded  # the integration debugger's record of it
    assert line["error"] == "ValidationFailed"
    assert line["duration_ms"] >= 0
    assert line["timestamp"].endswith("Z")
    assert value(samples, "kpihub_batches_rejected_total", status="422") == 1.0
    # Every request has its line; none holds a credential.
    assert len([r for r in records if r.get("logger") == "kpihub.access"]) == 3
    assert token not in log.text
    assert creds.client_secret not in log.text
    assert "Bearer" not in log.text


def test_auth_failures_and_throttling_are_logged(settings: Settings) -> None:
    with captured_json_log(settings) as log, open_harness(settings) as h:
        creds = h.client(rate_limit=1)
        wrong = replace(creds, client_secret="khs_" + "x" * 43)
        assert (
            h.token_response(
                wrong,
            ).status_code
            == 401
        )
        token = h.token(creds)
        assert h.post_kpi(token, example_body()).status_code == 200
        throttled = h.post_kpi(token, example_body(), headers={"X-Request-ID": "t-429"})
        assert throttled.status_code == 429
        samples = scrape(h)
    records = log.records()
    access = [r for r in records if r.get("logger") == "kpihub.access"]
    (failed,) = [r for r in access if r["route"] == "/oauth/token" and r["status"] == 401]
    assert failed["auth_failure"] == "client_secret:wrong_secret"
    assert "client_id" not in failed  # not authenticated
    (line,) = access_lines(records, "t-429")
    assert line["status"] == 429
    assert line["error"] == "RateLimited"
    assert line["client_id"] == creds.client_id
    assert value(samples, "kpihub_ratelimited_total", limit="api") == 1.0
    assert wrong.client_secret not in log.text
    assert creds.client_secret not in log.text
