"""Helpers for dashboard tests over HTTP (Starlette's TestClient, both backends)."""

from __future__ import annotations

import re

import httpx

from kpihub import admin
from kpihub.domain import Role
from tests.functional.harness import TENANT, Harness

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(
    h: Harness, email: str, role: Role = Role.ADMIN, tenant: str = TENANT, password: str = PASSWORD
) -> None:
    h.run(lambda: admin.create_user(h.storage, tenant, email, password, role))


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def login_response(
    h: Harness, email: str, password: str = PASSWORD, tenant: str = TENANT, scheme: str = "http"
) -> httpx.Response:
    base = f"{scheme}://{tenant}.localhost"
    form = h.http.get(f"{base}/login")
    assert form.status_code == 200, form.text
    response: httpx.Response = h.http.post(
        f"{base}/login",
        data={"csrf_token": csrf_of(form), "email": email, "password": password, "next": "/"},
        follow_redirects=False,
    )
    return response


def sign_in(h: Harness, email: str, password: str = PASSWORD, tenant: str = TENANT) -> str:
    """Sign in; returns the session cookie (also kept in the client's jar)."""
    response = login_response(h, email, password, tenant)
    assert response.status_code == 303, response.text
    cookie = response.cookies.get("kpihub_session")
    assert cookie
    return cookie


def page_csrf(h: Harness, path: str = "/", tenant: str = TENANT) -> str:
    page = h.http.get(f"http://{tenant}.localhost{path}", follow_redirects=False)
    assert page.status_code == 200, page.text
    return csrf_of(page)
