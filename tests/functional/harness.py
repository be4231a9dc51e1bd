"""A real kpihub app on a real database, driven over HTTP (Starlette's TestClient).

The database is whatever ``settings.database_url`` names (SQLite or PostgreSQL);
``Harness.rows`` reads it back through a connection of its own, the same on both.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from starlette.testclient import TestClient

from kpihub import admin
from kpihub.app import create_app
from kpihub.domain import Environment
from kpihub.examples import article_example
from kpihub.services import Services
from kpihub.settings import Settings
from kpihub.storage import Storage
from tests import databases
from tests.batches import one_element_batch

T = TypeVar("T")

TENANT = "acme"
INTEGRATION = "acme-pos"


@dataclass
class Credentials:
    tenant: str
    client_id: str
    client_secret: str
    environment: Environment


class Harness:
    def __init__(self, client: TestClient) -> None:
        self.http = client

    @property
    def services(self) -> Services:
        svc: Services = self.http.app.state.services  # type: ignore[attr-defined]
        return svc

    @property
    def storage(self) -> Storage:
        return self.services.storage

    @property
    def database_url(self) -> str:
        return self.services.settings.database_url

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (``?`` placeholders) on the app's own database.

        A separate, short-lived connection: what it sees was committed. Values have the
        same Python types on every backend (see ``tests.databases.query``).
        """
        return databases.rows(self.database_url, sql, *params)

    def records(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """``rows``, each keyed by column name."""
        return databases.records(self.database_url, sql, *params)

    def scalar(self, sql: str, *params: Any) -> Any:
        """The single value of a query that returns exactly one row of one column."""
        ((value,),) = self.rows(sql, *params)
        return value

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the app's own event loop."""
        assert self.http.portal is not None
        return self.http.portal.call(fn)

    def tenant(self, name: str = TENANT, timezone: str = "UTC") -> None:
        self.run(lambda: admin.create_tenant(self.storage, name, timezone))

    def integration(self, tenant: str = TENANT, identifier: str = INTEGRATION) -> None:
        self.run(lambda: admin.create_integration(self.storage, tenant, identifier))

    def client(
        self,
        tenant: str = TENANT,
        environment: Environment = Environment.TESTING,
        **options: Any,
    ) -> Credentials:
        issued = self.run(
            lambda: admin.create_client(
                self.storage,
                self.services.server_key,
                tenant_name=tenant,
                environment=environment,
                name="pos",
                **options,
            )
        )
        return Credentials(tenant, issued.client.client_id, issued.secret, environment)

    def url(self, tenant: str, path: str) -> str:
        return f"http://{tenant}.localhost{path}"

    def token_response(self, creds: Credentials, **extra: str) -> httpx.Response:
        response: httpx.Response = self.http.post(
            self.url(creds.tenant, "/oauth/token"),
            data={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                **extra,
            },
        )
        return response

    def token(self, creds: Credentials, **extra: str) -> str:
        response = self.token_response(creds, **extra)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def post_kpi(
        self,
        token: str | None,
        body: Any = None,
        *,
        tenant: str = TENANT,
        version: str = "v1",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        url = self.url(tenant, f"/api/external/{version}/kpi")
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
            response: httpx.Response = self.http.post(url, content=content, headers=sent)
        else:
            response = self.http.post(url, json=body, headers=sent)
        return response


def example_body(identifier: str = INTEGRATION) -> dict[str, Any]:
    body = copy.deepcopy(article_example())
    body["type"] = identifier
    return body


def one_element(**element: Any) -> dict[str, Any]:
    """A valid one-element batch for ``INTEGRATION``; keyword arguments replace element
    fields (None drops)."""
    return one_element_batch(INTEGRATION, "123", **element)


@contextmanager
def open_harness(
    settings: Settings, *, tenant: bool = True, integration: bool = True
) -> Iterator[Harness]:
    """A harness on a fresh app for ``http://acme.localhost``; ``tenant`` creates the
    tenant, ``integration`` (with it) its integration."""
    with TestClient(create_app(settings), base_url=f"http://{TENANT}.localhost") as client:
        h = Harness(client)
        if tenant:
            h.tenant()
            if integration:
                h.integration()
        yield h
