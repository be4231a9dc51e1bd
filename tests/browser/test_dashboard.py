"""The dashboard in a real browser against a real server."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import (
    VIEWER,
    Site,
    body,
    screenshot,
    sign_in,
    use_environment,
)
from tests.functional.server import Creds, get_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_sign_in_and_see_the_overview(page: Page, site: Site) -> None:
    page.goto(site.url() + "/")
    expect(page).to_have_url(site.url() + "/login?next=%2F")
    screenshot(page, "login")
    sign_in(page, site)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("env-badge")).to_contain_text("production")
    use_environment(page, "testing")
    expect(page.get_by_test_id("points-stored")).to_have_text("30")
    expect(page.locator("canvas#chart[data-ready=true]")).to_be_attached()
    expect(page.get_by_test_id("overview-clients")).to_contain_text(site.creds.client_id)
    screenshot(page, "overview")


def test_a_chart_appears_for_pushed_data_and_a_user_filter_changes_the_table(
    page: Page, site: Site
) -> None:
    sign_in(page, site)
    use_environment(page, "testing")
    page.get_by_role("link", name="Explorer").click()
    expect(page.locator("canvas#chart[data-ready=true]")).to_be_attached()
    rows = page.get_by_test_id("points").locator("tbody tr")
    expect(rows).to_have_count(30)
    # The chart holds the pushed values: their sum over the buckets is the total.
    total = page.evaluate(
        "window.kpihubChart.data.datasets[0].data.reduce((a, v) => a + (v || 0), 0)"
    )
    assert total == pytest.approx(sum(10.0 + i for i in range(30)))
    screenshot(page, "explorer")

    page.get_by_label("User").fill("u2")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(10)
    users = page.get_by_test_id("points").locator("td[data-col=user]").all_inner_texts()
    assert set(users) == {"u2"}
    expect(page.locator("canvas#chart[data-ready=true]")).to_be_attached()

    page.get_by_label("Leaderboard").check()
    page.wait_for_load_state()
    expect(page.get_by_test_id("leaderboard").locator("tbody tr")).to_have_count(1)
    page.get_by_label("User").fill("")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("leaderboard").locator("tbody tr")).to_have_count(3)
    screenshot(page, "leaderboard")
    with page.expect_download() as download:
        page.get_by_test_id("csv").click()
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()  # noqa: SIM115
    assert lines[0] == "rank,user_id,value,count"
    assert len(lines) == 4


def test_a_rejected_request_shows_its_field_error(page: Page, site: Site) -> None:
    bad = body([("bad-1", "u1", "l1", 1.0, int(time.time()))])
    bad["data"][0]["elements"][0]["value"] = "1,5"
    assert site.push(bad).status_code == 422
    sign_in(page, site)
    use_environment(page, "testing")
    page.get_by_role("link", name="Debugger").click()
    with page.expect_navigation():
        page.get_by_label("Status").select_option("422")
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows.first).to_have_attribute("data-status", "422")
    screenshot(page, "debugger")
    rows.first.get_by_role("link").click()
    expect(page.get_by_test_id("status")).to_have_text("422")
    errors = page.get_by_test_id("errors")
    expect(errors).to_contain_text("data.0.elements.0.value")
    expect(errors).to_contain_text('"1,5"')
    expect(errors).to_contain_text("'.'")  # the message says how to fix it
    expect(page.get_by_test_id("body")).to_contain_text('"value": "1,5"')
    screenshot(page, "request")


def test_create_a_client_use_its_secret_then_revoke_it(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.get_by_role("link", name="Credentials").click()
    screenshot(page, "credentials")
    page.get_by_label("Name").fill("browser-made")
    page.get_by_label("Environment", exact=True).last.select_option("testing")
    page.get_by_role("button", name="Create client").click()
    client_id = page.get_by_test_id("client-id").inner_text()
    secret = page.get_by_test_id("client-secret").inner_text()
    assert client_id.startswith("kh_test_") and secret.startswith("khs_")
    expect(page.get_by_role("button", name="Copy").first).to_be_visible()
    screenshot(page, "secret")

    creds = Creds(client_id, secret)
    with site.http() as http:
        token = get_token(http, creds)
        sent = site.push(body([("fresh-1", "u9", "l9", 5.0, int(time.time()))]), creds)
        assert sent.status_code == 200, sent.text

        page.goto(site.url() + "/credentials")
        row = page.locator(f"tr[data-client-id='{client_id}']")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_contain_text("revoked")
        expect(row).to_contain_text("revoked")

        refused = http.post(
            "/api/external/v1/kpi",
            json=body([("fresh-2", "u9", "l9", 5.0, int(time.time()))]),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status_code == 401, refused.text
        again = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert again.status_code == 401


def test_a_viewer_cannot_reach_the_credentials(page: Page, site: Site) -> None:
    sign_in(page, site, VIEWER)
    expect(page.get_by_role("link", name="Explorer")).to_be_visible()
    expect(page.get_by_role("link", name="Credentials")).to_have_count(0)
    response = page.goto(site.url() + "/credentials")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("administrators")
    screenshot(page, "forbidden")


def test_a_session_cookie_of_tenant_a_is_refused_on_tenant_b(
    context: BrowserContext, page: Page, site: Site
) -> None:
    sign_in(page, site)
    (session,) = [c for c in context.cookies() if c["name"] == "kpihub_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert session["domain"] == "acme.localhost"  # host-only: the browser keeps it there
    # Carry it to the other tenant's host by hand, as an attacker would.
    context.add_cookies(
        [{"name": "kpihub_session", "value": session["value"], "url": site.url("other")}]
    )
    page.goto(site.url("other") + "/credentials")
    expect(page).to_have_url(site.url("other") + "/login?next=%2Fcredentials")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(site.url() + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_a_form_post_without_the_csrf_token_is_rejected(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.goto(site.url() + "/credentials")
    form = page.locator("form[action='/credentials/integrations']")
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    form.get_by_label("New identifier").fill("forged-pos")
    form.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("security token")
    identifiers = site.cli.json("integration", "list", "--tenant", "acme")
    assert "forged-pos" not in [i["identifier"] for i in identifiers]
    screenshot(page, "csrf-rejected")
