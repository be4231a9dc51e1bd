"""Schemathesis against a real ``kpihub serve``: every documented operation, fuzzed.

Each generated request (valid and invalid ones) goes over real HTTP to the tenant's
host with a real access token, or the client's real Basic credentials at the OAuth
endpoints, so the fuzzer gets past authentication. Every answer must be no 5xx and
match the document: status code, content type, headers and body schema.

The run is bounded and derandomized (``EXAMPLES`` per operation, a fixed seed), so CI
sees the same requests every time.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kpihub.openapi import build_spec
from tests.functional.server import Creds, Kpihub, ServerProcess, get_token, new_client

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"
EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Kpihub:
    # Limits high enough that the fuzzer explores the API rather than its 429s.
    cli = Kpihub(
        tmp_path_factory.mktemp("fuzz"),
        module_database_url,
        rate_limit="1000000",
        token_rate_limit_per_client="1000000",
        token_rate_limit_per_address="1000000",
        auth_failure_limit_per_address="1000000",
    )
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    return cli


@dataclass(frozen=True)
class Target:
    server: ServerProcess
    creds: Creds
    token: str
    http: httpx.Client

    @property
    def host(self) -> str:
        return f"{TENANT}.localhost:{self.server.port}"

    def headers(self, path: str) -> dict[str, str]:
        if path.startswith("/oauth/"):
            pair = f"{self.creds.client_id}:{self.creds.client_secret}".encode()
            auth = "Basic " + base64.b64encode(pair).decode()
        else:
            auth = f"Bearer {self.token}"
        return {"Host": self.host, "Authorization": auth}


@pytest.fixture(scope="module")
def target(cli: Kpihub, server: ServerProcess) -> Iterator[Target]:
    creds = new_client(cli, TENANT)
    with server.http(TENANT) as http:
        token = get_token(http, creds)
    with httpx.Client(timeout=30) as http:
        yield Target(server, creds, token, http)


# The document is built here, without a server, so that pytest names one test per
# operation; test_the_live_document_is_the_one_fuzzed checks the server serves it.
schema = schemathesis.openapi.from_dict(build_spec())


def test_the_live_document_is_the_one_fuzzed(target: Target) -> None:
    with target.server.http(TENANT) as http:
        live = http.get("/openapi.json")
    assert live.status_code == 200, live.text
    assert live.json() == json.loads(json.dumps(build_spec()))


def send(case: schemathesis.Case[Any], target: Target) -> httpx.Response:
    """The case as a real request, made a little more like a real client's: credentials
    are the client's (Basic, or in the body when the case puts any there), batches name
    the tenant's integration identifier, a body sent with ``Content-Encoding: gzip`` is
    gzipped, and an idempotency key is never reused for another body."""
    kwargs = case.as_transport_kwargs(
        base_url=target.server.base_url, headers=target.headers(case.path)
    )
    body = kwargs.get("json", kwargs.get("data"))
    headers = kwargs["headers"]
    if case.path.startswith("/oauth/"):
        if isinstance(body, dict) and body.keys() & {"client_id", "client_secret"}:
            # Credentials in the body (the other way to authenticate): the real ones.
            body.update(client_id=target.creds.client_id, client_secret=target.creds.client_secret)
            headers.pop("Authorization", None)
    elif isinstance(body, dict) and isinstance(body.get("type"), str):
        # The document cannot know which identifiers a tenant registered; without this
        # no generated batch could ever be stored.
        body["type"] = INTEGRATION
    if "json" in kwargs:
        raw = json.dumps(kwargs.pop("json")).encode()
        key = headers.get("Idempotency-Key")
        if isinstance(key, str) and 0 < len(key) < 200:
            # Shrunk cases share keys ("0") across different bodies, which would make
            # every later batch a 422 conflict; the same body and key still replay.
            headers["Idempotency-Key"] = f"{key}-{hashlib.sha256(raw).hexdigest()[:16]}"
        kwargs["content"] = gzip.compress(raw) if headers.get("Content-Encoding") == "gzip" else raw
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(kwargs.get("data"), str | bytes):
        kwargs["content"] = kwargs.pop("data")  # a raw body; httpx takes only forms as data
    if cookies := kwargs.pop("cookies", None):  # httpx takes cookies per client, not request
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return target.http.request(**kwargs)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case: schemathesis.Case[Any], target: Target) -> None:
    response = send(case, target)
    case.validate_response(response, checks=CHECKS)


def test_token_flows_conform(target: Target) -> None:
    """Stateful, along the document's links: a token just issued is introspected and
    revoked, and a revoked one introspected, each answer as documented."""

    class TokenFlows(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case: schemathesis.Case[Any], **kwargs: Any) -> schemathesis.Response:
            return schemathesis.Response.from_httpx(send(case, target), verify=True)

        def validate_response(
            self,
            response: schemathesis.Response,
            case: schemathesis.Case[Any],
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS)
            if case.operation.label == "POST /oauth/introspect" and response.status_code == 200:
                live.append(response.json()["active"])

    live: list[bool] = []
    TokenFlows.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=4,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The links carried real tokens: some introspection found one live (a token just
    # issued), and, the run being derandomized, this holds on every run.
    assert True in live, live
