"""Example payloads shipped with the package."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def article_example() -> dict[str, Any]:
    """The integration article's example body (type still the placeholder)."""
    data: dict[str, Any] = json.loads(
        files(__package__).joinpath("kpi-request.json").read_text(encoding="utf-8")
    )
    return data
