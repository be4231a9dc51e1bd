"""The dashboard's security rules over HTTP: sign-in, cookies, CSRF, tenants, roles."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kpihub.domain import Role
from kpihub.web.passwords import hash_password, verify_password
from tests.functional.conftest import app_on
from tests.functional.harness import Harness, example_body
from tests.functional.web_support import (
    PASSWORD,
    add_user,
    csrf_of,
    login_response,
    page_csrf,
    sign_in,
)

ACME = "http://acme.localhost"
OTHER = "http://other.localhost"


def _cookie_header(response_headers: list[str], name: str) -> str:
    (header,) = [h for h in response_headers if h.startswith(f"{name}=")]
    return header.lower()


def test_pages_need_a_sign_in(harness: Harness) -> None:
    for path in ("/", "/explorer", "/debugger", "/credentials", "/explorer.csv"):
        response = harness.http.get(ACME + path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


def test_sign_in_sets_a_strict_session_cookie(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    response = login_response(harness, "Ada@Example.com")  # emails compare case-insensitively
    assert response.status_code == 303, response.text
    cookie = _cookie_header(response.headers.get_list("set-cookie"), "kpihub_session")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    assert "domain=" not in cookie  # host-only: never sent to another tenant's host
    page = harness.http.get(ACME + "/")
    assert page.status_code == 200
    assert "ada@example.com" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def test_session_cookie_is_secure_over_https(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    response = login_response(harness, "ada@example.com", scheme="https")
    assert response.status_code == 303, response.text
    cookie = _cookie_header(response.headers.get_list("set-cookie"), "kpihub_session")
    assert "secure" in cookie and "httponly" in cookie


def test_wrong_password_and_unknown_email_get_the_same_answer(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    wrong = login_response(harness, "ada@example.com", "not the password at all")
    unknown = login_response(harness, "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    message = "The email or the password is wrong."
    assert message in wrong.text and message in unknown.text
    assert "kpihub_session" not in wrong.cookies and "kpihub_session" not in unknown.cookies
    stored = harness.scalar("SELECT password_hash FROM dashboard_users")
    assert stored.startswith("$argon2id$")


def test_an_unknown_email_costs_an_argon2_verification() -> None:
    import time

    from argon2 import extract_parameters

    from kpihub.web import passwords

    real = hash_password(PASSWORD)
    # The cost of a verification is set by the hash's parameters: the dummy checked for
    # unknown emails must carry exactly the parameters real hashes get.
    assert extract_parameters(passwords._dummy_hash()) == extract_parameters(real)
    # ... and no password ever signs in through it, not even the dummy's own.
    assert verify_password(None, "kpihub: no user has this password") is False

    def cost(password_hash: str | None) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            assert verify_password(password_hash, "wrong password!") is False
            best = min(best, time.perf_counter() - started)
        return best

    # A loose bound, so a busy machine cannot fail it: an unknown email is not the
    # near-free path (microseconds) it would be without the dummy verification.
    assert cost(None) > 0.25 * cost(real)


def test_sign_in_is_throttled_per_account(tmp_path: Path, database_url: str) -> None:
    with app_on(
        tmp_path, database_url, integration=False, dashboard_login_failures_per_account=3
    ) as h:
        add_user(h, "ada@example.com")
        for _ in range(3):
            assert login_response(h, "ada@example.com", "wrong password!!").status_code == 401
        # Even the right password is refused until the window ends.
        refused = login_response(h, "ada@example.com")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in refused.text
        # Another account from the same address is not locked out by these failures.
        add_user(h, "bob@example.com")
        assert login_response(h, "bob@example.com").status_code == 303


def test_sign_in_is_throttled_per_address(tmp_path: Path, database_url: str) -> None:
    with app_on(
        tmp_path, database_url, integration=False, dashboard_login_limit_per_address=2
    ) as h:
        assert login_response(h, "a@example.com", "wrong password!!").status_code == 401
        assert login_response(h, "b@example.com", "wrong password!!").status_code == 401
        assert login_response(h, "c@example.com", "wrong password!!").status_code == 429


def test_sign_in_form_needs_its_csrf_cookie(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    form = harness.http.get(ACME + "/login")
    token = csrf_of(form)
    harness.http.cookies.clear()
    response = harness.http.post(
        ACME + "/login",
        data={"csrf_token": token, "email": "ada@example.com", "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "kpihub_session" not in response.cookies


def test_a_form_post_without_the_csrf_token_is_rejected(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    sign_in(harness, "ada@example.com")
    before = harness.scalar("SELECT COUNT(*) FROM clients")
    for data in (
        {"name": "pos", "environment": "testing"},
        {"name": "pos", "environment": "testing", "csrf_token": "forged"},
    ):
        response = harness.http.post(ACME + "/credentials/clients", data=data)
        assert response.status_code == 403, response.text
        assert "security token" in response.text
    assert harness.scalar("SELECT COUNT(*) FROM clients") == before
    # The same form with the session's token works.
    token = page_csrf(harness, "/credentials")
    made = harness.http.post(
        ACME + "/credentials/clients",
        data={"name": "pos", "environment": "testing", "csrf_token": token},
    )
    assert made.status_code == 200, made.text
    assert "khs_" in made.text
    assert harness.scalar("SELECT COUNT(*) FROM clients") == before + 1


def test_a_cross_origin_post_is_rejected_even_with_the_token(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    sign_in(harness, "ada@example.com")
    token = page_csrf(harness, "/credentials")
    response = harness.http.post(
        ACME + "/credentials/integrations",
        data={"identifier": "evil", "csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert harness.rows("SELECT 1 FROM integrations WHERE identifier = 'evil'") == []


def test_a_session_of_tenant_a_is_refused_on_tenant_b(harness: Harness) -> None:
    harness.tenant("other")
    add_user(harness, "ada@example.com")
    add_user(harness, "ada@example.com", tenant="other")  # same email, other tenant
    cookie = sign_in(harness, "ada@example.com")
    harness.http.cookies.clear()
    for path in ("/", "/credentials", "/debugger"):
        response = harness.http.get(
            OTHER + path, headers={"Cookie": f"kpihub_session={cookie}"}, follow_redirects=False
        )
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")
    # The cookie still works where it was issued.
    ok = harness.http.get(ACME + "/", headers={"Cookie": f"kpihub_session={cookie}"})
    assert ok.status_code == 200


def test_a_tampered_session_cookie_is_refused(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    cookie = sign_in(harness, "ada@example.com")
    harness.http.cookies.clear()
    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    response = harness.http.get(
        ACME + "/", headers={"Cookie": f"kpihub_session={tampered}"}, follow_redirects=False
    )
    assert response.status_code == 303


def test_sign_out_voids_the_session(harness: Harness) -> None:
    add_user(harness, "ada@example.com")
    cookie = sign_in(harness, "ada@example.com")
    token = page_csrf(harness)
    out = harness.http.post(ACME + "/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    harness.http.cookies.clear()
    replay = harness.http.get(
        ACME + "/", headers={"Cookie": f"kpihub_session={cookie}"}, follow_redirects=False
    )
    assert replay.status_code == 303  # a copy of the cookie is worthless after sign-out


def test_a_viewer_cannot_reach_the_credentials(harness: Harness) -> None:
    add_user(harness, "val@example.com", Role.VIEWER)
    sign_in(harness, "val@example.com")
    home = harness.http.get(ACME + "/")
    assert home.status_code == 200
    assert 'href="/credentials"' not in home.text
    assert harness.http.get(ACME + "/credentials").status_code == 403
    token = page_csrf(harness)
    response = harness.http.post(
        ACME + "/credentials/clients",
        data={"name": "pos", "environment": "testing", "csrf_token": token},
    )
    assert response.status_code == 403
    assert harness.scalar("SELECT COUNT(*) FROM clients") == 0


def test_an_admin_cannot_touch_another_tenants_client(harness: Harness) -> None:
    harness.tenant("other")
    theirs = harness.client("other")
    add_user(harness, "ada@example.com")
    sign_in(harness, "ada@example.com")
    token = page_csrf(harness, "/credentials")
    for action in ("revoke", "rotate", "retire-old-secret", "rate-limit"):
        response = harness.http.post(
            f"{ACME}/credentials/clients/{theirs.client_id}/{action}",
            data={"csrf_token": token, "rate_limit": "1"},
        )
        assert response.status_code == 404, (action, response.text)
    row = harness.rows(
        "SELECT revoked_at, rate_limit FROM clients WHERE client_id = ?", theirs.client_id
    )
    assert row == [(None, None)]
    page = harness.http.get(ACME + "/credentials")
    assert theirs.client_id not in page.text


def test_the_debugger_shows_only_this_tenants_requests(harness: Harness, token: str) -> None:
    harness.tenant("other")
    harness.integration("other", "other-pos")
    theirs = harness.client("other")
    body = example_body("other-pos")
    body["data"][0]["elements"][0]["value"] = "1,5"
    rejected = harness.post_kpi(harness.token(theirs), body, tenant="other")
    assert rejected.status_code == 422
    (batch_id,) = harness.rows("SELECT id FROM batches")[0]
    add_user(harness, "ada@example.com")
    sign_in(harness, "ada@example.com")
    switch = page_csrf(harness)
    harness.http.post(ACME + "/environment", data={"csrf_token": switch, "environment": "testing"})
    listing = harness.http.get(ACME + "/debugger")
    assert batch_id not in listing.text
    assert harness.http.get(f"{ACME}/debugger/{batch_id}").status_code == 404
    assert harness.http.get(f"{ACME}/debugger/{batch_id}/body").status_code == 404


def test_the_debugger_shows_a_rejected_request_with_its_errors(
    harness: Harness, token: str
) -> None:
    body = example_body()
    body["data"][0]["elements"][0]["value"] = "1,5"
    assert harness.post_kpi(token, body).status_code == 422
    (batch_id, raw) = harness.rows("SELECT id, raw_body FROM batches")[0]
    add_user(harness, "val@example.com", Role.VIEWER)
    sign_in(harness, "val@example.com")
    switch = page_csrf(harness)
    harness.http.post(ACME + "/environment", data={"csrf_token": switch, "environment": "testing"})
    listing = harness.http.get(ACME + "/debugger?status=422")
    assert f'href="/debugger/{batch_id}"' in listing.text
    detail = harness.http.get(f"{ACME}/debugger/{batch_id}")
    assert detail.status_code == 200
    assert "data.0.elements.0.value" in detail.text
    assert "&#34;1,5&#34;" in detail.text or "&quot;1,5&quot;" in detail.text
    download = harness.http.get(f"{ACME}/debugger/{batch_id}/body")
    assert download.content == zlib.decompress(raw)
    assert "attachment" in download.headers["content-disposition"]


@pytest.fixture
def behind_https_proxy(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with app_on(tmp_path, database_url, integration=False, trust_forwarded_headers=True) as h:
        yield h


def test_secure_cookie_behind_a_tls_proxy(behind_https_proxy: Harness) -> None:
    h = behind_https_proxy
    add_user(h, "ada@example.com")
    form = h.http.get(ACME + "/login", headers={"X-Forwarded-Proto": "https"})
    login_cookie = _cookie_header(form.headers.get_list("set-cookie"), "kpihub_login_csrf")
    assert "secure" in login_cookie
    # The client talks plain http to the app, so its jar keeps Secure cookies to itself.
    token = csrf_of(form)
    response = h.http.post(
        ACME + "/login",
        data={"csrf_token": token, "email": "ada@example.com", "password": PASSWORD},
        headers={
            "X-Forwarded-Proto": "https",
            "Origin": "https://acme.localhost",
            "Cookie": f"kpihub_login_csrf={token}",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    cookie = _cookie_header(response.headers.get_list("set-cookie"), "kpihub_session")
    assert "secure" in cookie
