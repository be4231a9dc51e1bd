"""The dashboard's pages over HTTP on both backends: what they show and what they change."""

from __future__ import annotations

import csv
import io
import re

from kpihub.domain import Role
from tests.functional.harness import Credentials, Harness, example_body
from tests.functional.web_support import add_user, page_csrf, sign_in

ACME = "http://acme.localhost"


def _testing(h: Harness, role: Role = Role.ADMIN) -> None:
    add_user(h, "ada@example.com", role)
    sign_in(h, "ada@example.com")
    token = page_csrf(h)
    h.http.post(ACME + "/environment", data={"csrf_token": token, "environment": "testing"})


def test_overview_counts_points_batches_and_errors(
    harness: Harness, creds: Credentials, token: str
) -> None:
    assert harness.post_kpi(token, example_body()).status_code == 200
    bad = example_body()
    bad["data"][0]["elements"][0]["value"] = "1,5"
    assert harness.post_kpi(token, bad).status_code == 422
    _testing(harness)
    page = harness.http.get(ACME + "/")
    assert page.status_code == 200
    assert 'data-testid="points-stored">6<' in page.text
    assert 'data-testid="error-rate">50.0 %<' in page.text
    assert creds.client_id in page.text
    chart = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text)
    assert chart and '"values"' in chart.group(1)
    # The production environment has none of it.
    token2 = page_csrf(harness)
    harness.http.post(
        ACME + "/environment", data={"csrf_token": token2, "environment": "production"}
    )
    assert 'data-testid="points-stored">0<' in harness.http.get(ACME + "/").text


def test_explorer_filters_and_downloads_csv(harness: Harness, token: str) -> None:
    body = example_body()
    assert harness.post_kpi(token, body).status_code == 200
    # The article's example is from 2019: a custom range reaches it.
    _testing(harness, Role.VIEWER)
    query = {"range": "custom", "from": "2019-01-01", "to": "2019-12-31"}
    page = harness.http.get(ACME + "/explorer", params=query)
    assert page.status_code == 200, page.text
    assert 'id="chart-data"' in page.text
    # The first KPI by name, labelled with its latest point's units.
    assert 'aria-label="bonuses (sum, Bonus earned): a line chart' in page.text
    everyone = page.text.count('data-col="user"')
    assert everyone > 0
    first_user = str(body["data"][0]["user_id"])
    one = harness.http.get(ACME + "/explorer", params={**query, "user_id": first_user})
    assert 0 < one.text.count('data-col="user"') <= everyone
    assert set(re.findall(r'data-col="user">([^<]*)<', one.text)) == {first_user}
    nobody = harness.http.get(ACME + "/explorer", params={**query, "user_id": "nobody"})
    assert 'data-testid="no-points"' in nobody.text
    download = harness.http.get(ACME + "/explorer.csv", params={**query, "user_id": first_user})
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows and {r["user_id"] for r in rows} == {first_user}
    board = harness.http.get(
        ACME + "/explorer.csv", params={**query, "view": "leaderboard", "by": "location_id"}
    )
    assert board.text.splitlines()[0] == "rank,location_id,value,count"


def test_credentials_rotate_retire_rate_limit_and_integrations(
    harness: Harness, creds: Credentials
) -> None:
    _testing(harness)
    token = page_csrf(harness, "/credentials")
    base = f"{ACME}/credentials/clients/{creds.client_id}"
    rotated = harness.http.post(base + "/rotate", data={"csrf_token": token})
    assert rotated.status_code == 200
    new_secret = re.search(r'data-testid="client-secret">([^<]+)<', rotated.text)
    assert new_secret
    # Both secrets work during the rotation; retiring the old one leaves the new one.
    old = harness.token_response(creds)
    assert old.status_code == 200
    retired = harness.http.post(base + "/retire-old-secret", data={"csrf_token": token})
    assert retired.status_code == 200 and "no longer accepted" in retired.text
    assert harness.token_response(creds).status_code == 401
    fresh = Credentials(creds.tenant, creds.client_id, new_secret.group(1), creds.environment)
    assert harness.token_response(fresh).status_code == 200
    limited = harness.http.post(base + "/rate-limit", data={"csrf_token": token, "rate_limit": "7"})
    assert limited.status_code == 200
    assert (
        harness.scalar("SELECT rate_limit FROM clients WHERE client_id = ?", creds.client_id) == 7
    )
    bad = harness.http.post(base + "/rate-limit", data={"csrf_token": token, "rate_limit": "x"})
    assert bad.status_code == 422 and "whole number" in bad.text
    harness.http.post(base + "/rate-limit", data={"csrf_token": token, "rate_limit": ""})
    assert (
        harness.scalar("SELECT rate_limit FROM clients WHERE client_id = ?", creds.client_id)
        is None
    )
    registered = harness.http.post(
        ACME + "/credentials/integrations", data={"csrf_token": token, "identifier": "acme-hr"}
    )
    assert registered.status_code == 200 and "acme-hr" in registered.text
    twice = harness.http.post(
        ACME + "/credentials/integrations", data={"csrf_token": token, "identifier": "acme-hr"}
    )
    assert twice.status_code == 409
