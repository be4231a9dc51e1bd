"""A real ``kpihub serve``: its stderr is JSON lines, and they and ``/metrics`` tell what
happened (a rejected batch, a refused secret, a throttled client, a store that failed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import databases
from tests.batches import one_element_batch
from tests.functional.scraping import Samples, scrape_text, value
from tests.functional.server import (
    Creds,
    Kpihub,
    ServerProcess,
    get_token,
    new_client,
    running_server,
    token_response,
)
from tests.logs_support import access_lines, json_lines

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Kpihub:
    cli = Kpihub(tmp_path_factory.mktemp("observed"), module_database_url)
    set_up(cli)
    return cli


def set_up(cli: Kpihub) -> None:
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)


def post(http: httpx.Client, token: str, body: object, request_id: str) -> httpx.Response:
    return http.post(
        "/api/external/v1/kpi",
        json=body,
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )


def scrape(server: ServerProcess) -> Samples:
    with httpx.Client(base_url=server.base_url) as http:
        return scrape_text(http)[1]


def server_log(server: ServerProcess) -> tuple[str, list[dict[str, Any]]]:
    text = server.log_path.read_text()
    return text, json_lines(text)


def test_what_happened_is_in_the_log_and_the_metrics(live: ServerProcess, cli: Kpihub) -> None:
    creds = new_client(cli, TENANT)
    throttled = new_client(cli, TENANT, "--rate-limit", "1")
    before = scrape(live)
    with live.http(TENANT) as http:
        token = get_token(http, creds)
        bad = one_element_batch(INTEGRATION, "u1", value="1,5")
        refused = post(http, token, bad, "vendor-422")
        assert refused.status_code == 422
        assert refused.headers["x-request-id"] == "vendor-422"

        wrong = token_response(http, Creds(creds.client_id, "khs_" + "x" * 43))
        assert wrong.status_code == 401
        limited = get_token(http, throttled)
        good = one_element_batch(INTEGRATION, "u1")
        assert post(http, limited, good, "first").status_code == 200
        over = post(http, limited, good, "over-limit")
        assert over.status_code == 429
        assert over.headers["x-request-id"] == "over-limit"
    after = scrape(live)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kpihub_batches_rejected_total", status="422") == 1
    assert delta("kpihub_batches_rejected_total", status="429") == 1
    assert delta("kpihub_ratelimited_total", limit="api") == 1
    assert delta("kpihub_auth_failures_total", credential="client_secret", reason="wrong_secret")
    assert delta("kpihub_batch_elements_count") == 1

    text, records = server_log(live)  # every line JSON, uvicorn's too
    assert any(
        r["logger"] == "uvicorn.error" and r["event"] == "Application startup complete."
        for r in records
    )
    (line,) = access_lines(records, "vendor-422")
    assert line["status"] == 422
    assert line["route"] == "/api/external/{api_version}/kpi"
    assert line["tenant"] == TENANT
    assert line["client_id"] == creds.client_id
    assert line["elements"] == 1
    assert line["error"] == "ValidationFailed"
    (line,) = access_lines(records, "over-limit")
    assert line["status"] == 429
    assert line["client_id"] == throttled.client_id
    assert any(
        r.get("auth_failure") == "client_secret:wrong_secret" and r["status"] == 401
        for r in records
        if r["logger"] == "kpihub.access"
    )
    for secret in (token, limited, creds.client_secret, throttled.client_secret, "Bearer"):
        assert secret not in text


def test_a_failed_store_is_logged_counted_and_answered_503(
    tmp_path: Path, database_url: str
) -> None:
    cli = Kpihub(tmp_path, database_url, database_timeout="1")
    set_up(cli)
    creds = new_client(cli, TENANT)
    with running_server(cli) as server, server.http(TENANT) as http:
        token = get_token(http, creds)
        assert post(http, token, one_element_batch(INTEGRATION, "u1"), "ok-1").status_code == 200
        with databases.broken(database_url):
            refused = post(http, token, one_element_batch(INTEGRATION, "u2"), "store-down")
            samples = scrape(server)
            ready = http.get("/readyz").status_code
    assert refused.status_code == 503, refused.text
    assert refused.headers["x-request-id"] == "store-down"
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    # SQLite still reads beside a writer's lock; a dropped database answers nothing.
    assert ready == (200 if backend == "sqlite" else 503)
    failures = sum(
        v
        for (name, labels), v in samples.items()
        if name == "kpihub_store_errors_total" and ("backend", backend) in labels
    )
    # SQLite: the batch's write; PostgreSQL: already the bearer lookup. A refusal for
    # want of a store is not recorded for the debugger, so one failure either way.
    assert failures == 1
    assert value(samples, "kpihub_batches_rejected_total", status="503") == 1

    _, records = server_log(server)
    during = [r for r in records if r.get("request_id") == "store-down"]
    assert {"kpihub.http", "kpihub.access"} <= {r["logger"] for r in during}
    (error,) = [r for r in during if r["level"] == "error"]
    assert error["event"].startswith("store unavailable:")
    (line,) = access_lines(records, "store-down")
    assert line["status"] == 503
    assert line["error"] == "StoreUnavailable"
