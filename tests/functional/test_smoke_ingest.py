from __future__ import annotations

from kpihub.domain import Environment
from tests.functional.harness import Harness, example_body


def test_article_example_end_to_end(harness: Harness, token: str) -> None:
    response = harness.post_kpi(token, example_body())
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["status"] == "ok"
    assert (ack["received"], ack["created"], ack["updated"], ack["unchanged"]) == (6, 6, 0, 0)
    assert response.headers["X-RateLimit-Limit"] == "180"
    assert response.headers["X-RateLimit-Remaining"] == "179"
    tenant = harness.run(lambda: harness.storage.get_tenant("acme"))
    assert tenant is not None
    stored = harness.run(lambda: harness.storage.count_points(tenant.id, Environment.TESTING))
    assert stored == 6
