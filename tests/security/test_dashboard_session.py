"""The dashboard's session and CSRF rules against forged, stolen, stale and cross-site
requests (over HTTP, both backends)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from kpihub.domain import Role
from kpihub.web import auth
from tests.functional.conftest import app_on
from tests.functional.harness import Harness
from tests.functional.web_support import (
    PASSWORD,
    add_user,
    csrf_of,
    login_response,
    page_csrf,
    sign_in,
)

ACME = "http://acme.localhost"
ADA = "ada@example.com"


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


def _signed_in(response: httpx.Response) -> bool:
    """Whether a page was answered as to a signed-in user (not sent to the sign-in)."""
    if response.status_code == 200:
        return True
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/login")
    return False


def _get_with(h: Harness, cookie: str, path: str = "/", host: str = ACME) -> httpx.Response:
    h.http.cookies.clear()
    response: httpx.Response = h.http.get(
        host + path, headers={"Cookie": f"kpihub_session={cookie}"}, follow_redirects=False
    )
    return response


def _cookie_line(response: httpx.Response, name: str) -> str:
    (line,) = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]
    return line.lower()


def _session_cookie(payload: dict[str, Any], *, key: bytes, age: int = 0) -> str:
    """A session cookie signed with ``key`` as the app signs its own, ``age`` seconds old."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    serializer = URLSafeTimedSerializer(
        key,
        salt=auth._SESSION_SALT,
        signer=Signer,
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    return str(serializer.dumps(payload))


def _ids(h: Harness, email: str = ADA) -> tuple[int, int]:
    (row,) = h.rows(
        "SELECT t.id, u.id FROM dashboard_users u JOIN tenants t ON t.id = u.tenant_id "
        "WHERE t.name = 'acme' AND u.email = ?",
        email,
    )
    return int(row[0]), int(row[1])


def test_the_session_cookie_cannot_be_read_by_scripts_or_sent_cross_site(h: Harness) -> None:
    add_user(h, ADA)
    plain = _cookie_line(login_response(h, ADA), "kpihub_session")
    assert "httponly" in plain and "samesite=lax" in plain and "path=/" in plain
    assert "domain=" not in plain  # host-only: never sent to another tenant's host
    assert "secure" not in plain  # plain http: it would never come back
    h.http.cookies.clear()
    tls = _cookie_line(login_response(h, ADA, scheme="https"), "kpihub_session")
    assert "secure" in tls and "httponly" in tls


def test_a_tampered_or_forged_session_cookie_is_refused(h: Harness) -> None:
    add_user(h, ADA)
    cookie = sign_in(h, ADA)
    tenant_id, user_id = _ids(h)
    payload = {"t": tenant_id, "u": user_id, "c": "csrf", "i": time.time()}
    real_key = auth.session_key(h.services.server_key)
    # The control: signed like the app signs, the cookie is a session.
    assert _signed_in(_get_with(h, _session_cookie(payload, key=real_key)))
    forged = [
        cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"),  # signature altered
        cookie.split(".", 1)[0] + ".x.y",  # signature dropped
        _session_cookie(payload, key=b"guessed key"),  # another key
        _session_cookie(payload, key=h.services.server_key),  # the raw server key
        "",
    ]
    for value in forged:
        assert not _signed_in(_get_with(h, value)), value


def test_an_expired_session_is_refused(tmp_path: Path, database_url: str) -> None:
    with app_on(tmp_path, database_url, integration=False, dashboard_session_ttl=600) as h:
        add_user(h, ADA)
        tenant_id, user_id = _ids(h)
        key = auth.session_key(h.services.server_key)
        payload = {"t": tenant_id, "u": user_id, "c": "csrf", "i": time.time() - 3600}
        assert _signed_in(_get_with(h, _session_cookie(payload, key=key, age=590)))
        assert not _signed_in(_get_with(h, _session_cookie(payload, key=key, age=611)))


def test_a_session_of_tenant_a_is_refused_on_tenant_b(h: Harness) -> None:
    h.tenant("other")
    add_user(h, ADA)
    add_user(h, ADA, tenant="other")  # the same email on both: still two accounts
    cookie = sign_in(h, ADA)
    for path in ("/", "/explorer", "/debugger", "/credentials"):
        assert not _signed_in(_get_with(h, cookie, path, host="http://other.localhost")), path
    assert _signed_in(_get_with(h, cookie))


def test_signing_out_voids_every_copy_of_the_session(h: Harness) -> None:
    add_user(h, ADA)
    first = sign_in(h, ADA)
    h.http.cookies.clear()
    second = sign_in(h, ADA)  # another device
    out = h.http.post(f"{ACME}/logout", data={"csrf_token": page_csrf(h)}, follow_redirects=False)
    assert out.status_code == 303
    assert "kpihub_session=" in out.headers["set-cookie"]
    for copy in (first, second):
        assert not _signed_in(_get_with(h, copy))


def _state(h: Harness) -> list[Any]:
    return [
        h.rows("SELECT client_id, revoked_at, rate_limit, secret_hash FROM clients"),
        h.rows("SELECT identifier FROM integrations ORDER BY identifier"),
    ]


def test_a_form_without_the_sessions_csrf_token_changes_nothing(h: Harness) -> None:
    creds = h.client()
    add_user(h, "bob@example.com")
    sign_in(h, "bob@example.com")
    bobs_token = page_csrf(h, "/credentials")
    h.http.cookies.clear()
    add_user(h, ADA)
    sign_in(h, ADA)
    before = _state(h)
    client = f"{ACME}/credentials/clients/{creds.client_id}"
    forms = [
        (f"{ACME}/credentials/clients", {"name": "pos", "environment": "testing"}),
        (f"{ACME}/credentials/integrations", {"identifier": "planted"}),
        (f"{client}/revoke", {}),
        (f"{client}/rotate", {}),
        (f"{client}/rate-limit", {"rate_limit": "1"}),
        (f"{ACME}/logout", {}),
    ]
    for url, data in forms:
        for token in (None, "", "forged", bobs_token):
            sent = data if token is None else {**data, "csrf_token": token}
            response = h.http.post(url, data=sent, follow_redirects=False)
            assert response.status_code == 403, (url, token, response.text)
            assert "security token" in response.text
    assert _state(h) == before
    assert _signed_in(h.http.get(ACME + "/", follow_redirects=False))  # logout was refused too


def test_a_cross_origin_form_is_refused_even_with_the_token(h: Harness) -> None:
    add_user(h, ADA)
    sign_in(h, ADA)
    token = page_csrf(h, "/credentials")
    before = _state(h)
    for origin in (
        "http://evil.example",
        "null",
        "http://other.localhost",
        "https://acme.localhost",
    ):
        response = h.http.post(
            f"{ACME}/credentials/integrations",
            data={"identifier": "planted", "csrf_token": token},
            headers={"Origin": origin},
        )
        assert response.status_code == 403, origin
    assert _state(h) == before
    # The same form from the page's own origin goes through.
    ok = h.http.post(
        f"{ACME}/credentials/integrations",
        data={"identifier": "planted", "csrf_token": token},
        headers={"Origin": ACME},
    )
    assert ok.status_code == 200, ok.text
    assert "planted" in str(_state(h)[1])


def test_the_sign_in_form_is_protected_against_login_csrf(h: Harness) -> None:
    add_user(h, ADA)
    form = h.http.get(f"{ACME}/login")
    token = csrf_of(form)
    attempts = [
        ({"Cookie": ""}, token),  # no double-submit cookie (a cross-site post)
        ({"Cookie": f"kpihub_login_csrf={token}x"}, token),  # cookie and field disagree
        ({"Cookie": f"kpihub_login_csrf={token}"}, ""),  # no field
        ({"Cookie": f"kpihub_login_csrf={token}", "Origin": "http://evil.example"}, token),
    ]
    for headers, field in attempts:
        h.http.cookies.clear()
        response = h.http.post(
            f"{ACME}/login",
            data={"csrf_token": field, "email": ADA, "password": PASSWORD},
            headers=headers,
            follow_redirects=False,
        )
        assert response.status_code == 403, (headers, field, response.text)
        assert "kpihub_session" not in response.cookies


def test_sign_in_redirects_only_to_local_paths(h: Harness) -> None:
    add_user(h, ADA)
    for target in (
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "",
    ):
        h.http.cookies.clear()
        form = h.http.get(f"{ACME}/login")
        response = h.http.post(
            f"{ACME}/login",
            data={"csrf_token": csrf_of(form), "email": ADA, "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.status_code == 303, target
        assert response.headers["location"] == "/", target
    h.http.cookies.clear()
    form = h.http.get(f"{ACME}/login")
    local = h.http.post(
        f"{ACME}/login",
        data={"csrf_token": csrf_of(form), "email": ADA, "password": PASSWORD, "next": "/debugger"},
        follow_redirects=False,
    )
    assert local.headers["location"] == "/debugger"


def test_a_viewer_cannot_use_the_administrators_actions(h: Harness) -> None:
    creds = h.client()
    add_user(h, "val@example.com", Role.VIEWER)
    sign_in(h, "val@example.com")
    token = page_csrf(h)
    before = _state(h)
    assert h.http.get(f"{ACME}/credentials").status_code == 403
    client = f"{ACME}/credentials/clients/{creds.client_id}"
    for url, data in (
        (f"{ACME}/credentials/clients", {"name": "pos", "environment": "testing"}),
        (f"{ACME}/credentials/integrations", {"identifier": "planted"}),
        (f"{client}/revoke", {}),
        (f"{client}/rotate", {}),
        (f"{client}/retire-old-secret", {}),
        (f"{client}/rate-limit", {"rate_limit": "1"}),
    ):
        response = h.http.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 403, url
        assert "khs_" not in response.text
    assert _state(h) == before


def test_sign_in_guessing_is_throttled(tmp_path: Path, database_url: str) -> None:
    with app_on(
        tmp_path, database_url, integration=False, dashboard_login_failures_per_account=3
    ) as h:
        add_user(h, ADA)
        for _ in range(3):
            assert login_response(h, ADA, "a wrong password").status_code == 401
        for password in ("another wrong one", PASSWORD):
            refused = login_response(h, ADA, password)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert "kpihub_session" not in refused.cookies


def test_dashboard_pages_cannot_be_framed_cached_or_run_inline_scripts(h: Harness) -> None:
    add_user(h, ADA)
    login = h.http.get(f"{ACME}/login")
    sign_in(h, ADA)
    pages = [login] + [
        h.http.get(ACME + p) for p in ("/", "/explorer", "/debugger", "/credentials")
    ]
    for page in pages:
        assert page.status_code == 200, page.url
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
