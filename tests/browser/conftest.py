"""Chromium (Debian's, headless) driven by Playwright against a real ``kpihub serve``.

One server per module on SQLite: tenants, users and clients are made with the real
CLI, data is pushed through the real API, pages are driven in the browser.
``*.localhost`` is mapped to 127.0.0.1 by a host-resolver rule, so the browser sends
the tenant's Host header itself. Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.functional.server import Creds, Kpihub, ServerProcess, get_token, new_client

CHROMIUM = os.environ.get("KPIHUB_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PASSWORD = "correct horse battery staple"
ADMIN = "ada@example.com"
VIEWER = "val@example.com"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@dataclass
class Site:
    cli: Kpihub
    server: ServerProcess
    creds: Creds  # a testing client of acme

    def url(self, tenant: str = "acme") -> str:
        return f"http://{tenant}.localhost:{self.server.port}"

    def http(self, tenant: str = "acme") -> httpx.Client:
        return self.server.http(tenant)

    def push(self, body: dict[str, Any], creds: Creds | None = None) -> httpx.Response:
        with self.http() as http:
            token = get_token(http, creds or self.creds)
            return http.post(
                "/api/external/v1/kpi", json=body, headers={"Authorization": f"Bearer {token}"}
            )


def body(rows: list[tuple[str, str, str, float, int]]) -> dict[str, Any]:
    """A batch of (element id, user, location, value, timestamp) for KPI 'sales'."""
    return {
        "type": "acme-pos",
        "version": "1.0.0",
        "context": "sales",
        "data": [
            {
                "user_id": user,
                "location_id": location,
                "elements": [
                    {
                        "id": element,
                        "kpi": "sales",
                        "object_type": "number",
                        "value": value,
                        "units": "EUR",
                        "timestamp": ts,
                    }
                ],
            }
            for element, user, location, value, ts in rows
        ],
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cli = Kpihub(tmp_path_factory.mktemp("browser"))
    for tenant in ("acme", "other"):
        cli.run("tenant", "create", tenant)
    cli.run("integration", "create", "--tenant", "acme", "acme-pos")
    for email, role, tenant in (
        (ADMIN, "admin", "acme"),
        (VIEWER, "viewer", "acme"),
        (ADMIN, "admin", "other"),
    ):
        args = ("--tenant", tenant, "--email", email, "--role", role, "--password-stdin")
        cli.run("user", "create", *args, stdin=PASSWORD + "\n")
    creds = new_client(cli, "acme")
    server = cli.server()
    server.start()
    try:
        s = Site(cli, server, creds)
        now = int(time.time())
        # Up to 119 hours old: inside the explorer's default range (the last 7 local
        # days, today included) at any hour of the day.
        rows = [
            (f"e{i}", f"u{i % 3 + 1}", f"l{i % 2 + 1}", 10.0 + i, now - 3600 * (i * 7 % 120))
            for i in range(30)
        ]
        response = s.push(body(rows))
        assert response.status_code == 200, response.text
        yield s
    finally:
        server.kill()


# Module scope, not session: sync Playwright runs an event loop in this thread while it is
# open, and later tests calling asyncio.run() would find it running.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    b = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--host-resolver-rules=MAP *.localhost 127.0.0.1",
        ],
    )
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, site: Site, email: str = ADMIN, tenant: str = "acme") -> None:
    page.goto(site.url(tenant) + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.url(tenant) + "/")


def use_environment(page: Page, environment: str) -> None:
    if page.locator("#env-select").input_value() == environment:
        return
    with page.expect_navigation():
        page.locator("#env-select").select_option(environment)
    assert page.get_by_test_id("env-badge").inner_text().lower().startswith(environment)


def screenshot(page: Page, name: str) -> None:
    """This page at desktop and phone widths, whole length."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size or DESKTOP
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # charts resize on the next frame
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(original)
