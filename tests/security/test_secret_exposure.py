"""Secrets and access tokens are never given away: in answers, in the store, in the
integration debugger. (The server's own logs: ``test_server_logs.py``.)"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable

import httpx
import pytest

from kpihub.domain import Environment, Role
from kpihub.oauth.secrets import hash_secret
from kpihub.storage.urls import scheme
from tests.functional.harness import Credentials, Harness, example_body
from tests.functional.web_support import add_user, page_csrf, sign_in
from tests.security.leaks import assert_not_leaked

ACME = "http://acme.localhost"


def _whole(response: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
    return f"{response.status_code}\n{headers}\n\n{response.text}"


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the app logged (the test's own HTTP client logs the URLs it calls: left out)."""
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return "\n".join(
        formatter.format(record)
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )


def test_error_answers_never_repeat_a_secret_or_a_token(
    harness: Harness, creds: Credentials, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    wrong = creds.client_secret[:-6] + "abcdef"
    form = {"grant_type": "client_credentials", "client_id": creds.client_id}

    def to_token(headers: dict[str, str], **data: str) -> httpx.Response:
        response: httpx.Response = h.http.post(
            f"{ACME}/oauth/token", data={**form, **data}, headers=headers
        )
        return response

    def to_api(authorization: str, **params: str) -> httpx.Response:
        response: httpx.Response = h.http.post(
            f"{ACME}/api/external/v1/kpi",
            json=example_body(),
            params=params,
            headers={"Authorization": authorization},
        )
        return response

    attempts: dict[str, Callable[[], httpx.Response]] = {
        "wrong secret in the form": lambda: to_token({}, client_secret=wrong),
        "wrong secret as JSON": lambda: h.http.post(
            f"{ACME}/oauth/token", content=json.dumps({**form, "client_secret": wrong})
        ),
        "wrong secret in Basic": lambda: to_token(
            {"Authorization": _basic(creds.client_id, wrong)}
        ),
        "the secret as the Authorization header, no scheme": lambda: to_token(
            {"Authorization": creds.client_secret}
        ),
        "the secret as a Bearer header": lambda: to_token(
            {"Authorization": f"Bearer {creds.client_secret}"}
        ),
        "Basic and the secret in the body": lambda: to_token(
            {"Authorization": _basic(creds.client_id, creds.client_secret)},
            client_secret=creds.client_secret,
        ),
        "a scope not allowed": lambda: to_token(
            {}, client_secret=creds.client_secret, scope="admin"
        ),
        "the secret as the API's Authorization header": lambda: to_api(creds.client_secret),
        "the token as the API's Authorization header, no scheme": lambda: to_api(token),
        "the token under another scheme": lambda: to_api(f"Token {token}"),
        "the client's Basic credentials at the API": lambda: to_api(
            _basic(creds.client_id, creds.client_secret)
        ),
        "the token in the query string": lambda: to_api(f"Bearer {token}", access_token=token),
        "a secret in the query string": lambda: to_api(
            f"Bearer {token}", access_token=creds.client_secret
        ),
        "introspection with a wrong secret": lambda: h.http.post(
            f"{ACME}/oauth/introspect",
            data={"token": token, "client_id": creds.client_id, "client_secret": wrong},
        ),
    }
    caplog.set_level(logging.DEBUG)
    for name, attempt in attempts.items():
        response = attempt()
        assert response.status_code in (400, 401, 415), (name, response.text)
        assert_not_leaked(name, _whole(response), creds.client_secret, wrong, token)
    # Nor does the app's log, at debug level (a real server's: test_server_logs.py).
    assert_not_leaked("the app's log", _server_log(caplog), creds.client_secret, wrong, token)


def _every_stored_value(h: Harness) -> str:
    if scheme(h.database_url) == "sqlite":
        tables = h.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        tables = h.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    dump: list[str] = []
    for (table,) in tables:
        for row in h.rows(f'SELECT * FROM "{table}"'):
            for value in row:
                dump.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return "\n".join(dump)


def test_secrets_and_tokens_are_not_stored(harness: Harness, creds: Credentials) -> None:
    h = harness
    token = h.token(creds)
    assert h.post_kpi(token, example_body()).status_code == 200
    stored = _every_stored_value(h)
    assert creds.client_id in stored  # the dump does see the clients table
    assert_not_leaked("the database", stored, creds.client_secret, token)
    # What is kept of the secret: its HMAC under the server key, and nothing else.
    (secret_hash,) = h.rows("SELECT secret_hash FROM clients WHERE client_id = ?", creds.client_id)[
        0
    ]
    assert secret_hash == hash_secret(creds.client_secret, h.services.server_key)


def test_the_debugger_never_shows_a_credential(
    harness: Harness, creds: Credentials, token: str
) -> None:
    h = harness
    # Integrations that put credentials where they do not belong: as members of the
    # body, as values, and as the Authorization header without a scheme.
    body = example_body()
    body["client_secret"] = creds.client_secret
    body["access_token"] = token
    body["data"][0]["elements"][0]["value"] = creds.client_secret
    body["data"][0]["elements"][1]["units"] = token
    assert h.post_kpi(token, body).status_code == 422
    bare = h.http.post(
        f"{ACME}/api/external/v1/kpi",
        json=example_body(),
        headers={"Authorization": creds.client_secret},
    )
    assert bare.status_code == 401
    batch_ids = [batch_id for (batch_id,) in h.rows("SELECT id FROM batches")]
    assert len(batch_ids) == 2
    add_user(h, "val@example.com", Role.VIEWER)
    sign_in(h, "val@example.com")
    switch = page_csrf(h)
    h.http.post(f"{ACME}/environment", data={"csrf_token": switch, "environment": "testing"})
    pages = [f"{ACME}/debugger", f"{ACME}/debugger?status=rejected"]
    for batch_id in batch_ids:
        pages += [f"{ACME}/debugger/{batch_id}", f"{ACME}/debugger/{batch_id}/body"]
    for url in pages:
        page = h.http.get(url)
        assert page.status_code == 200, url
        assert_not_leaked(url, _whole(page), creds.client_secret, token)
    rejected_422 = h.http.get(f"{ACME}/debugger/{batch_ids[0]}")
    assert "data.0.elements.0.value" in rejected_422.text  # the error is still explained
    assert rejected_422.text.count("[redacted]") >= 4
    download = h.http.get(f"{ACME}/debugger/{batch_ids[0]}/body")
    assert json.loads(download.content)["client_secret"] == "[redacted]"
    assert (
        json.loads(download.content)["data"][0]["elements"][0]["id"]
        == (body["data"][0]["elements"][0]["id"])
    )


def test_a_secret_made_in_the_dashboard_is_shown_once(harness: Harness) -> None:
    h = harness
    add_user(h, "ada@example.com")
    sign_in(h, "ada@example.com")
    made = h.http.post(
        f"{ACME}/credentials/clients",
        data={"name": "pos", "environment": "testing", "csrf_token": page_csrf(h, "/credentials")},
    )
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    (client_id,) = h.rows("SELECT client_id FROM clients")[0]
    found = re.search(r"khs_[A-Za-z0-9_-]{43}", made.text)
    assert found, made.text
    secret = found.group()
    made_creds = Credentials("acme", client_id, secret, Environment.TESTING)
    assert h.token_response(made_creds).status_code == 200
    for path in ("/credentials", "/", "/debugger"):
        assert_not_leaked(path, _whole(h.http.get(ACME + path)), secret)
