"""Offline validation: the server's own rules (``kpihub.ingest.validate``), no network.

The one thing it cannot know is whether ``type`` is registered for the tenant.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from kpihub.client._models import Batch
from kpihub.errors import ValidationFailed
from kpihub.ingest.validate import validate_batch

__all__ = ["Problem", "check_batches", "validate"]


def validate(body: object, *, timezone: str = "UTC") -> dict[str, list[str]]:
    """Every field error the server would report for ``body`` (decoded JSON); ``{}`` if none.

    ``timezone`` is the tenant's (it only changes how ``"Y-m-d H:i:s"`` is read,
    never whether it is accepted).
    """
    try:
        validate_batch(body, tz=ZoneInfo(timezone), max_elements=sys.maxsize)
    except ValidationFailed as exc:
        return exc.errors
    return {}


@dataclass(frozen=True, slots=True)
class Problem:
    """One error: ``where`` in the input (``"line 12"``), the server's ``path`` and message."""

    where: str
    path: str
    message: str

    def __str__(self) -> str:
        if self.where == self.path:
            return self.message
        return f"{self.where}: {self.message}"


def check_batches(batches: Iterable[Batch], *, timezone: str = "UTC") -> list[Problem]:
    """Every problem in ``batches``, each pointed at its place in the input."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for batch in batches:
        for path, messages in validate(json.loads(batch.body), timezone=timezone).items():
            where = batch.origin(path) or path
            for message in messages:
                if (where, message) not in seen:  # type/version/context: once, not per batch
                    seen.add((where, message))
                    problems.append(Problem(where, path, message))
    return problems
