"""Helpers for the read-API tests: push points through the API, read them back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tests.functional.harness import INTEGRATION, TENANT, Harness

Params = Mapping[str, Any] | None


def element(
    id: str | int,
    ts: int,
    value: float = 1.0,
    *,
    kpi: str = "points",
    user_id: str | None = "u1",
    location_id: str | None = None,
    units: str | None = None,
    date_from: int | None = None,
    date_to: int | None = None,
) -> dict[str, Any]:
    """One element with its owner ids (``push`` puts each in a data entry of its own)."""
    el: dict[str, Any] = {
        "id": id,
        "kpi": kpi,
        "object_type": "number",
        "value": value,
        "timestamp": ts,
        "_user_id": user_id,
        "_location_id": location_id,
    }
    if units is not None:
        el["units"] = units
    if date_from is not None:
        el["date_from"] = date_from
    if date_to is not None:
        el["date_to"] = date_to
    return el


def push(
    h: Harness,
    token: str,
    elements: Sequence[dict[str, Any]],
    *,
    context: str = "sales",
    type_: str = INTEGRATION,
    tenant: str = TENANT,
) -> None:
    """Ingest ``elements`` in batches of at most 10,000; fails the test on any refusal."""
    for start in range(0, len(elements), 10_000):
        data = []
        for el in elements[start : start + 10_000]:
            el = dict(el)
            owner = {
                k: v
                for k, v in (
                    ("user_id", el.pop("_user_id")),
                    ("location_id", el.pop("_location_id")),
                )
                if v is not None
            }
            data.append({**owner, "elements": [el]})
        body = {"type": type_, "version": "1.0.0", "context": context, "data": data}
        response = h.post_kpi(token, body, tenant=tenant)
        assert response.status_code == 200, response.text


def get(
    h: Harness,
    token: str | None,
    path: str = "",
    params: Params = None,
    *,
    tenant: str = TENANT,
    version: str = "v1",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """``GET /api/external/{version}/kpi{path}`` with the token."""
    sent = {"Accept": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    response: httpx.Response = h.http.get(
        h.url(tenant, f"/api/external/{version}/kpi{path}"),
        params=params,
        headers=sent,
    )
    return response


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def unprocessable(response: httpx.Response, param: str) -> str:
    """The 422 message for ``param`` (asserting the Laravel shape)."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"message", "errors"}, body
    assert param in body["errors"], body
    message: str = body["errors"][param][0]
    assert param in message, message
    return message
