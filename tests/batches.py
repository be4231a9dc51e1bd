"""Ingest request bodies shared by the unit and functional tests."""

from __future__ import annotations

from typing import Any


def one_element_batch(integration: str, user_id: str, /, **element: Any) -> dict[str, Any]:
    """A valid one-element batch; keyword arguments replace element fields (None drops)."""
    el: dict[str, Any] = {
        "id": 1,
        "kpi": "points",
        "object_type": "number",
        "value": "100",
        "timestamp": "2019-09-10 13:09:23",
    }
    for key, value in element.items():
        if value is None:
            el.pop(key, None)
        else:
            el[key] = value
    return {
        "type": integration,
        "version": "1.0.0",
        "context": "sales",
        "data": [{"user_id": user_id, "elements": [el]}],
    }
