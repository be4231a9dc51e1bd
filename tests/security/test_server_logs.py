"""A real ``kpihub serve`` at log level debug: whatever it is sent, its log (stdout and
stderr) never holds a client secret, an access token or a dashboard password."""

from __future__ import annotations

import base64
import copy
import re

import httpx
import pytest

from kpihub.examples import article_example
from kpihub.oauth.secrets import new_secret
from tests.functional.server import Kpihub, get_token, new_client, running_server
from tests.security.leaks import assert_not_leaked

pytestmark = pytest.mark.slow

TENANT = "acme"
PASSWORD = "a dashboard password, long enough"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _sign_in(http: httpx.Client, password: str) -> httpx.Response:
    form = http.get("/login")
    found = _CSRF.search(form.text)
    assert found, form.text
    response: httpx.Response = http.post(
        "/login",
        data={"csrf_token": found.group(1), "email": "ada@example.com", "password": password},
    )
    return response


def test_server_logs_never_hold_a_secret(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> None:
    cli = Kpihub(tmp_path_factory.mktemp("logs"), module_database_url, log_level="debug")
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, "acme-pos")
    cli.run(
        "user", "create", "--tenant", TENANT, "--email", "ada@example.com", "--role", "admin",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    creds = new_client(cli, TENANT)
    wrong = new_secret()
    body = copy.deepcopy(article_example())
    body["type"] = "acme-pos"
    invalid = copy.deepcopy(body)
    invalid["data"][0]["elements"][0]["value"] = creds.client_secret
    invalid["client_secret"] = creds.client_secret
    with running_server(cli) as server, server.http(TENANT) as http:
        token = get_token(http, creds)
        secrets = (creds.client_secret, wrong, token, PASSWORD, "wrong " + PASSWORD)
        form = {"grant_type": "client_credentials", "client_id": creds.client_id}
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        answers = [
            http.post("/oauth/token", data={**form, "client_secret": creds.client_secret}),
            http.post("/oauth/token", data={**form, "client_secret": wrong}),
            http.post("/oauth/token", json={**form, "client_secret": wrong}),
            http.post("/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"}),
            http.post("/oauth/token", data=form, headers={"Authorization": creds.client_secret}),
            http.post("/oauth/introspect", data={**form, "client_secret": wrong, "token": token}),
        ]
        bearer = {"Authorization": f"Bearer {token}"}
        answers += [
            http.post("/api/external/v1/kpi", json=body, headers=bearer),
            http.post("/api/external/v1/kpi", json=invalid, headers=bearer),
            http.post("/api/external/v1/kpi", json=body, params={"access_token": token}),
            http.post("/api/external/v1/kpi", json=body, headers={"Authorization": token}),
            http.post(
                "/api/external/v1/kpi",
                content=b'{"client_secret": "' + creds.client_secret.encode() + b'", ',
                headers={**bearer, "Content-Type": "application/json"},
            ),
            http.get("/api/external/v1/kpi", headers=bearer),
            http.get("/api/external/v1/kpi", params={"user_id": token}, headers=bearer),
            _sign_in(http, "wrong " + PASSWORD),
            _sign_in(http, PASSWORD),
            http.get("/debugger"),
        ]
        statuses = [answer.status_code for answer in answers]
        expected = [200, 401, 401, 200, 401, 401, 200, 422, 400, 401, 400, 200, 422, 401, 303, 200]
        assert statuses == expected, statuses
        (rejected,) = re.findall(r'href="/debugger/([0-9a-f]+)"', answers[-1].text)[:1]
        assert http.get(f"/debugger/{rejected}").status_code == 200
        revoke = {**form, "client_secret": wrong, "token": token}
        assert http.post("/oauth/revoke", data=revoke).status_code == 401
    # Stopped (killed) by now: the log is complete.
    log = server.log_path.read_text(errors="replace")
    assert "Application startup complete" in log  # the log was captured
    assert_not_leaked("the server log", log, *secrets)
